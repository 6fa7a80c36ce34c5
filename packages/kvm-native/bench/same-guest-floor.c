/*
 * The floor for the machine's own bench guest: the smallest KVM loop that resumes the very guest vmm runs, from
 * the state vmm's machine had when the guest printed its first phase line, and only answers what that guest
 * touches from then on. Beside floor.c's real-mode loops it tells the host's cost of an exit from this
 * long-mode guest (paging, its control registers, MSRs and XCRs) from what vmm adds.
 *
 * Usage: same-guest-floor <state.txt> <memory.bin>. state.txt is written by tests/guest/bench/exit-path.ts
 * from a snapshot of the machine, one item a line (numbers in decimal or 0x hex):
 *   ram GPA SIZE OFFSET                           a RAM region and where its bytes start in memory.bin
 *   reg NAME VALUE                                rax..r15, rip, rflags
 *   seg NAME BASE LIMIT SEL TYPE P DPL DB S L G AVL UNUSABLE     cs ds es fs gs ss tr ldt
 *   dtable NAME BASE LIMIT                        gdt idt
 *   cr NAME VALUE                                 cr0 cr2 cr3 cr4 cr8 efer apic_base
 *   xcr INDEX VALUE / msr INDEX VALUE / lapic HEX (1024 bytes)
 * The VM is made as the machine makes it (TSS and identity-map pages, in-kernel irqchip and PIT, KVM's
 * supported CPUID). Then the guest runs: COM1's line status reads "transmitter empty", its data writes are
 * collected into lines, every other port or MMIO write is counted and dropped, reads return zeros. Each phase
 * is timed from its "phase NAME begin" line to its "phase NAME end COUNT BYTES" line, as the machine's bench
 * times it. Prints one JSON line: { "PHASE": { "count", "ns", "nsPerExit" }, ..., "exits", "msrsRefused" }.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define KVM_TSS 0xfffbd000UL
#define KVM_IDENTITY_MAP 0xfffbc000UL
#define COM1 0x3f8
#define COM1_LSR (COM1 + 5)
#define LSR_TX_EMPTY 0x60
#define DEBUG_EXIT 0x501
#define MAX_REGIONS 8
#define MAX_MSRS 256
#define MAX_XCRS 16
#define MAX_PHASES 8

static void die(const char *what) {
  fprintf(stderr, "same-guest-floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void bad(const char *line) {
  fprintf(stderr, "same-guest-floor: cannot read the state line: %s", line);
  exit(1);
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

struct state {
  struct { uint64_t gpa, size, offset; } ram[MAX_REGIONS];
  int nram;
  struct kvm_regs regs;
  struct kvm_sregs sregs;
  struct kvm_xcrs xcrs;
  struct { uint32_t index; uint64_t value; } msrs[MAX_MSRS];
  int nmsrs;
  struct kvm_lapic_state lapic;
  int has_lapic;
};

static __u64 *reg_field(struct kvm_regs *r, const char *name) {
  static const char *names[] = {"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9",
                                "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags"};
  __u64 *fields[] = {&r->rax, &r->rbx, &r->rcx, &r->rdx, &r->rsi, &r->rdi, &r->rsp, &r->rbp, &r->r8, &r->r9,
                        &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15, &r->rip, &r->rflags};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(names[i], name)) return fields[i];
  return NULL;
}

static struct kvm_segment *seg_field(struct kvm_sregs *s, const char *name) {
  static const char *names[] = {"cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"};
  struct kvm_segment *fields[] = {&s->cs, &s->ds, &s->es, &s->fs, &s->gs, &s->ss, &s->tr, &s->ldt};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(names[i], name)) return fields[i];
  return NULL;
}

static __u64 *cr_field(struct kvm_sregs *s, const char *name) {
  static const char *names[] = {"cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apic_base"};
  __u64 *fields[] = {&s->cr0, &s->cr2, &s->cr3, &s->cr4, &s->cr8, &s->efer, &s->apic_base};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(names[i], name)) return fields[i];
  return NULL;
}

static void read_state(const char *path, struct state *st) {
  FILE *f = fopen(path, "r");
  if (!f) die(path);
  char line[4096], kind[16], name[16];
  while (fgets(line, sizeof line, f)) {
    unsigned long long a, b, c;
    if (sscanf(line, "%15s", kind) != 1) continue;
    if (!strcmp(kind, "ram")) {
      if (st->nram == MAX_REGIONS || sscanf(line, "ram %lli %lli %lli", &a, &b, &c) != 3) bad(line);
      st->ram[st->nram].gpa = a, st->ram[st->nram].size = b, st->ram[st->nram].offset = c, st->nram++;
    } else if (!strcmp(kind, "reg")) {
      __u64 *field;
      if (sscanf(line, "reg %15s %lli", name, &a) != 2 || !(field = reg_field(&st->regs, name))) bad(line);
      *field = a;
    } else if (!strcmp(kind, "seg")) {
      unsigned long long base, limit;
      unsigned sel, type, p, dpl, db, s, l, g, avl, unusable;
      struct kvm_segment *seg;
      if (sscanf(line, "seg %15s %lli %lli %i %i %i %i %i %i %i %i %i %i", name, &base, &limit, &sel, &type, &p, &dpl,
                 &db, &s, &l, &g, &avl, &unusable) != 13 || !(seg = seg_field(&st->sregs, name)))
        bad(line);
      *seg = (struct kvm_segment){.base = base, .limit = limit, .selector = sel, .type = type, .present = p,
                                  .dpl = dpl, .db = db, .s = s, .l = l, .g = g, .avl = avl, .unusable = unusable};
    } else if (!strcmp(kind, "dtable")) {
      if (sscanf(line, "dtable %15s %lli %lli", name, &a, &b) != 3) bad(line);
      struct kvm_dtable *t = !strcmp(name, "gdt") ? &st->sregs.gdt : !strcmp(name, "idt") ? &st->sregs.idt : NULL;
      if (!t) bad(line);
      t->base = a, t->limit = b;
    } else if (!strcmp(kind, "cr")) {
      __u64 *field;
      if (sscanf(line, "cr %15s %lli", name, &a) != 2 || !(field = cr_field(&st->sregs, name))) bad(line);
      *field = a;
    } else if (!strcmp(kind, "xcr")) {
      if (st->xcrs.nr_xcrs == MAX_XCRS || sscanf(line, "xcr %lli %lli", &a, &b) != 2) bad(line);
      st->xcrs.xcrs[st->xcrs.nr_xcrs].xcr = a, st->xcrs.xcrs[st->xcrs.nr_xcrs].value = b, st->xcrs.nr_xcrs++;
    } else if (!strcmp(kind, "msr")) {
      if (st->nmsrs == MAX_MSRS || sscanf(line, "msr %lli %lli", &a, &b) != 2) bad(line);
      st->msrs[st->nmsrs].index = a, st->msrs[st->nmsrs].value = b, st->nmsrs++;
    } else if (!strcmp(kind, "lapic")) {
      const char *hex = line + 6;
      for (size_t i = 0; i < sizeof st->lapic.regs; i++) {
        unsigned byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) bad(line);
        st->lapic.regs[i] = (char)byte;
      }
      st->has_lapic = 1;
    } else {
      bad(line);
    }
  }
  fclose(f);
  if (st->nram == 0) bad("(no ram line)\n");
}

/* The VM as the machine makes it, with its RAM and its one vCPU in the saved state. Returns the vCPU fd. */
static int make_vm(const struct state *st, const char *memory_file) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");
  if (ioctl(vm, KVM_SET_TSS_ADDR, KVM_TSS) < 0) die("KVM_SET_TSS_ADDR");
  uint64_t identity = KVM_IDENTITY_MAP;
  if (ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0) die("KVM_SET_IDENTITY_MAP_ADDR");
  if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");
  struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
  if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0) die("KVM_CREATE_PIT2");

  int mem = open(memory_file, O_RDONLY | O_CLOEXEC);
  if (mem < 0) die(memory_file);
  for (int i = 0; i < st->nram; i++) {
    uint8_t *ram = mmap(NULL, st->ram[i].size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED) die("mmap ram");
    for (uint64_t done = 0; done < st->ram[i].size;) {  /* the file is sparse and may end early: the rest is zeros */
      ssize_t n = pread(mem, ram + done, st->ram[i].size - done, st->ram[i].offset + done);
      if (n < 0) die("read memory file");
      if (n == 0) break;
      done += n;
    }
    struct kvm_userspace_memory_region region = {.slot = i, .guest_phys_addr = st->ram[i].gpa,
                                                  .memory_size = st->ram[i].size, .userspace_addr = (uintptr_t)ram};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
  }
  close(mem);

  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  int nent = 256;
  struct kvm_cpuid2 *cpuid = calloc(1, sizeof *cpuid + nent * sizeof(struct kvm_cpuid_entry2));
  cpuid->nent = nent;
  if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) die("KVM_GET_SUPPORTED_CPUID");
  if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) die("KVM_SET_CPUID2");
  free(cpuid);

  struct kvm_sregs sregs;  /* keeps what the file does not say (the pending-interrupt bitmap: none) */
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
  memcpy(sregs.interrupt_bitmap, (uint64_t[4]){0}, sizeof sregs.interrupt_bitmap);
  struct kvm_sregs want = st->sregs;
  memcpy(want.interrupt_bitmap, sregs.interrupt_bitmap, sizeof want.interrupt_bitmap);
  if (ioctl(vcpu, KVM_SET_SREGS, &want) < 0) die("KVM_SET_SREGS");
  if (ioctl(vcpu, KVM_SET_REGS, &st->regs) < 0) die("KVM_SET_REGS");
  if (st->xcrs.nr_xcrs && ioctl(vcpu, KVM_SET_XCRS, &st->xcrs) < 0) die("KVM_SET_XCRS");
  if (st->has_lapic && ioctl(vcpu, KVM_SET_LAPIC, &st->lapic) < 0) die("KVM_SET_LAPIC");
  return vcpu;
}

/* MSRs one at a time (KVM_SET_MSRS stops at the first it refuses); returns how many were refused. */
static int set_msrs(int vcpu, const struct state *st) {
  int refused = 0;
  for (int i = 0; i < st->nmsrs; i++) {
    struct { struct kvm_msrs head; struct kvm_msr_entry entry; } one = {
        .head = {.nmsrs = 1}, .entry = {.index = st->msrs[i].index, .data = st->msrs[i].value}};
    if (ioctl(vcpu, KVM_SET_MSRS, &one) != 1) refused++;
  }
  return refused;
}

struct phase {
  char name[32];
  double begin_ns, ns;
  long count;
};

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: same-guest-floor <state.txt> <memory.bin>\n");
    return 2;
  }
  static struct state st;
  read_state(argv[1], &st);
  int vcpu = make_vm(&st, argv[2]);
  int msrs_refused = set_msrs(vcpu, &st);
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run *run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap run");

  struct phase phases[MAX_PHASES];
  int nphases = 0, open_phases = 0;
  char line[256];
  size_t len = 0;
  long exits = 0;
  for (;;) {
    if (ioctl(vcpu, KVM_RUN, 0) < 0) {
      if (errno == EINTR) continue;
      die("KVM_RUN");
    }
    exits++;
    if (run->exit_reason == KVM_EXIT_MMIO) {
      if (!run->mmio.is_write) memset(run->mmio.data, 0, sizeof run->mmio.data);
      continue;
    }
    if (run->exit_reason != KVM_EXIT_IO) {
      fprintf(stderr, "same-guest-floor: unexpected exit %u after %ld exits\n", run->exit_reason, exits);
      return 1;
    }
    uint8_t *data = (uint8_t *)run + run->io.data_offset;
    if (run->io.direction == KVM_EXIT_IO_IN) {
      memset(data, 0, (size_t)run->io.size * run->io.count);
      if (run->io.port == COM1_LSR) data[0] = LSR_TX_EMPTY;
      continue;
    }
    if (run->io.port == DEBUG_EXIT) break;
    if (run->io.port != COM1) continue;
    if (data[0] != '\n') {
      if (len < sizeof line - 1) line[len++] = (char)data[0];
      continue;
    }
    double now = now_ns();
    line[len] = 0;
    len = 0;
    char name[32], what[8];
    long count, bytes;
    int fields = sscanf(line, "phase %31s %7s %ld %ld", name, what, &count, &bytes);
    if (fields == 2 && !strcmp(what, "begin") && nphases < MAX_PHASES) {
      struct phase *p = &phases[nphases++];
      snprintf(p->name, sizeof p->name, "%s", name);
      p->begin_ns = now, p->ns = -1, p->count = 0;
      open_phases++;
    } else if (fields == 4 && !strcmp(what, "end")) {
      for (int i = 0; i < nphases; i++)
        if (!strcmp(phases[i].name, name) && phases[i].ns < 0) phases[i].ns = now - phases[i].begin_ns, phases[i].count = count, open_phases--;
    }
  }
  if (nphases == 0 || open_phases != 0) {
    fprintf(stderr, "same-guest-floor: the guest ended with %d phases, %d of them unfinished\n", nphases, open_phases);
    return 1;
  }
  printf("{");
  for (int i = 0; i < nphases; i++)
    printf("\"%s\":{\"count\":%ld,\"ns\":%.0f,\"nsPerExit\":%.1f},", phases[i].name, phases[i].count, phases[i].ns,
           phases[i].ns / phases[i].count);
  printf("\"exits\":%ld,\"msrsRefused\":%d}\n", exits, msrs_refused);
  return 0;
}
