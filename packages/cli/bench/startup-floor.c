/*
 * The C floor for the start-up bench: the least a VMM does to run a raw guest the way `vmm run -k` does (256 MiB
 * of RAM, the in-kernel irqchip and PIT, one vCPU with KVM's supported CPUID, the image at 0x10000 in real mode
 * with CS=DS=ES=SS=0x1000, IP=0, SP=0x8000), a COM1 that only transmits (LSR always ready), and the stop at the
 * debug-exit port 0x501 (or HLT). Usage: startup-floor <guest.bin>. The guest's serial output goes to stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define RAM_SIZE (256UL << 20)
#define LOAD 0x10000UL
#define COM1 0x3f8
#define LSR (COM1 + 5)
#define LSR_TX_READY 0x60
#define DEBUG_EXIT 0x501

static void die(const char *what) {
  fprintf(stderr, "startup-floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int ioctl_or_die(int fd, unsigned long request, void *arg, const char *what) {
  int r = ioctl(fd, request, arg);
  if (r < 0) die(what);
  return r;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: startup-floor <guest.bin>\n");
    return 2;
  }
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("/dev/kvm");
  int vm = ioctl_or_die(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
  char *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ram == MAP_FAILED) die("mmap guest RAM");
  struct kvm_userspace_memory_region region = {.slot = 0, .guest_phys_addr = 0, .memory_size = RAM_SIZE, .userspace_addr = (unsigned long)ram};
  ioctl_or_die(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");
  ioctl_or_die(vm, KVM_SET_TSS_ADDR, (void *)0xfffbd000UL, "KVM_SET_TSS_ADDR");
  unsigned long long identity = 0xfffbc000ULL;
  ioctl_or_die(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity, "KVM_SET_IDENTITY_MAP_ADDR");
  ioctl_or_die(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");
  struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};
  ioctl_or_die(vm, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2");

  int image = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (image < 0) die(argv[1]);
  ssize_t n = read(image, ram + LOAD, RAM_SIZE - LOAD);
  if (n <= 0) die("reading the guest image");
  close(image);

  int vcpu = ioctl_or_die(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
  struct {
    struct kvm_cpuid2 header;
    struct kvm_cpuid_entry2 entries[256];
  } cpuid = {.header.nent = 256};
  ioctl_or_die(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid, "KVM_GET_SUPPORTED_CPUID");
  ioctl_or_die(vcpu, KVM_SET_CPUID2, &cpuid, "KVM_SET_CPUID2");
  int run_size = ioctl_or_die(kvm, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
  struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");

  struct kvm_sregs sregs;
  ioctl_or_die(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
  struct kvm_segment *segments[] = {&sregs.cs, &sregs.ds, &sregs.es, &sregs.ss, &sregs.fs, &sregs.gs};
  for (unsigned i = 0; i < sizeof segments / sizeof segments[0]; i++) {
    segments[i]->base = LOAD;
    segments[i]->selector = LOAD >> 4;
  }
  ioctl_or_die(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
  struct kvm_regs regs = {.rip = 0, .rsp = 0x8000, .rflags = 2};
  ioctl_or_die(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");

  char out[4096];
  size_t used = 0;
  for (;;) {
    ioctl_or_die(vcpu, KVM_RUN, 0, "KVM_RUN");
    if (run->exit_reason == KVM_EXIT_HLT) break;
    if (run->exit_reason != KVM_EXIT_IO) {
      fprintf(stderr, "startup-floor: unexpected exit %u\n", run->exit_reason);
      return 1;
    }
    unsigned char *data = (unsigned char *)run + run->io.data_offset;
    if (run->io.direction == KVM_EXIT_IO_IN) {
      memset(data, 0, (size_t)run->io.size * run->io.count);
      if (run->io.port == LSR) data[0] = LSR_TX_READY;
    } else if (run->io.port == COM1 && used < sizeof out) {
      out[used++] = (char)data[0];
    } else if (run->io.port == DEBUG_EXIT) {
      break;
    }
  }
  if (write(1, out, used) != (ssize_t)used) die("write");
  munmap(run, run_size);
  close(vcpu);
  close(vm);
  close(kvm);
  return 0;
}
