// Demand-paging benchmark in the spirit of Linux's KVM selftest demand_paging_test: N vCPUs (1, 2, 4) each write
// one word to every page of their own disjoint region of userfaultfd-registered guest RAM (a memfd, as
// Vm.allocateRam gives it); every first touch is a fault that one of N handler threads serves from a snapshot-like
// file (pread + UFFDIO_COPY). Figures: pages/s and µs per page for each N, beside populate() of the same file
// (the same copies without a fault round trip) as the yardstick.
//
// Each N runs twice: with the vCPUs taking turns on the JS thread (Vcpu.run: one vCPU faults at a time, so the rows
// are per-fault latency), and with each vCPU on a thread of its own (Vcpu.runOnThread: N vCPUs fault at once, as
// in the selftest). This host has 2 cores, so 4 vCPUs and 4 handler threads share them.
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { recordBench, recordSkip, renderTable, type FigureInput } from "@vmm/bench-kit";
import { createUserfaultPager, Kvm, kvmAvailability, userfaultAvailability, type Vcpu, type VcpuExitDispatch } from "@vmm/kvm-native";

const MIB_PER_VCPU = Number(process.env.BENCH_DP_MIB ?? 64);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const VCPU_COUNTS = [1, 2, 4] as const;
const PAGE = 4096;
const CODE = 0x1000;
const RAM_GPA = 0x40000000;
const REGION = MIB_PER_VCPU << 20;
const PAGES_PER_VCPU = REGION / PAGE;
const BENCH = {
  package: "@vmm/kvm-native",
  name: "demand-paging",
  title: "guest page faults served from a snapshot file through userfaultfd (demand_paging_test style)",
};

// 32-bit protected mode, flat segments, no paging: ESI = the region, ECX = its pages; one write per page.
const GUEST = `.code32
1: movl $0x01234567, (%esi)
   add $${PAGE}, %esi
   dec %ecx
   jnz 1b
   out %al, $0x10
   hlt`;

function assemble(dir: string): Uint8Array {
  writeFileSync(join(dir, "g.s"), `${GUEST}\n`);
  execFileSync("as", ["--32", "-o", join(dir, "g.o"), join(dir, "g.s")]);
  execFileSync("ld", ["-m", "elf_i386", "-Ttext", `0x${CODE.toString(16)}`, "-e", `0x${CODE.toString(16)}`, "-o", join(dir, "g.elf"), join(dir, "g.o")]);
  execFileSync("objcopy", ["-O", "binary", "-j", ".text", join(dir, "g.elf"), join(dir, "g.bin")]);
  return new Uint8Array(readFileSync(join(dir, "g.bin")));
}

/** A snapshot-like file of `bytes` bytes, every page non-zero (so each fault is a copy, not a zero page). */
function snapshotFile(path: string, bytes: number): number {
  const chunk = new Uint8Array(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31 + 7) % 255 + 1;
  const fd = openSync(path, "w+");
  for (let at = 0; at < bytes; at += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - at), at);
  return fd;
}

function flatProtectedMode(vcpu: Vcpu, esi: number, ecx: number): void {
  const flat = { base: 0, limit: 0xffffffff, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0 };
  const data = { ...flat, selector: 0x10, type: 3 };
  vcpu.setSregs({ cs: { ...flat, selector: 0x08, type: 11 }, ds: data, es: data, ss: data, fs: data, gs: data, cr0: 0x11 });
  vcpu.setRegs({ rip: CODE, rflags: 2, rsi: esi, rcx: ecx });
}

interface Sample {
  seconds: number;
  faults: number;
  copied: number;
}

/** How the vCPUs run: in turn on the JS thread, or each on a thread of its own. */
type Mode = "turns" | "threads";

/** Runs every vCPU until it halts. */
async function runAll(vcpus: Vcpu[], mode: Mode): Promise<void> {
  const dispatch: VcpuExitDispatch = { pio: () => 0, mmio: () => 0 };
  const check = (v: Vcpu, r: { reason: string }) => {
    if (r.reason !== "hlt" && r.reason !== "yield") throw new Error(`vCPU ${v.id}: ${JSON.stringify(r, (_k, x) => (typeof x === "bigint" ? x.toString(16) : x))}`);
    return r.reason === "hlt";
  };
  if (mode === "threads") {
    await Promise.all(vcpus.map(async (v) => { while (!check(v, await v.runOnThread(dispatch))); }));
    return;
  }
  const live = new Set(vcpus);
  while (live.size > 0) for (const v of [...live]) if (check(v, v.run(dispatch))) live.delete(v);
}

/** One VM with `n` vCPUs, each touching its region once; faults served by `n` threads. */
async function faultRound(kvm: Kvm, code: Uint8Array, fd: number, n: number, mode: Mode): Promise<Sample> {
  const vm = kvm.createVm();
  try {
    const low = vm.allocateMemory(0x10000);
    low.set(code, CODE);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: low });
    const ram = vm.allocateRam(n * REGION).chunks[0]!;
    const regions = Array.from({ length: n }, (_, i) => ({ memory: ram.subarray(i * REGION, (i + 1) * REGION), fd, offset: i * REGION }));
    const pager = createUserfaultPager({ regions, threads: n });
    try {
      vm.setMemoryRegion({ slot: 1, guestPhysAddr: RAM_GPA, memory: ram });
      const vcpus = Array.from({ length: n }, (_, i) => {
        const v = vm.createVcpu(i);
        flatProtectedMode(v, RAM_GPA + i * REGION, PAGES_PER_VCPU);
        return v;
      });
      const t0 = process.hrtime.bigint();
      await runAll(vcpus, mode);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const s = pager.stats();
      if (s.errors !== 0 || s.pagesCopied !== n * PAGES_PER_VCPU) throw new Error(`pager stats ${JSON.stringify(s)}`);
      return { seconds, faults: s.faults, copied: s.pagesCopied };
    } finally {
      pager.close();
    }
  } finally {
    vm.close();
  }
}

/** populate() of `n` regions' worth of the file with no vCPU running: the copies without faults. */
async function populateRound(kvm: Kvm, fd: number, n: number): Promise<Sample> {
  const vm = kvm.createVm();
  try {
    const ram = vm.allocateRam(n * REGION).chunks[0]!;
    const regions = Array.from({ length: n }, (_, i) => ({ memory: ram.subarray(i * REGION, (i + 1) * REGION), fd, offset: i * REGION }));
    const pager = createUserfaultPager({ regions, threads: 1 });
    try {
      const t0 = process.hrtime.bigint();
      if (!(await pager.populate())) throw new Error("populate did not finish");
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const s = pager.stats();
      return { seconds, faults: s.faults, copied: s.pagesCopied };
    } finally {
      pager.close();
    }
  } finally {
    vm.close();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const kvmOk = kvmAvailability();
  const uffdOk = kvmOk.ok ? userfaultAvailability() : kvmOk;
  if (!uffdOk.ok) {
    console.warn(`demand-paging: SKIPPED: ${uffdOk.reason}`);
    recordSkip({ ...BENCH, reason: uffdOk.reason });
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "demand-paging-bench-"));
  const kvm = Kvm.open();
  const maxVcpus = Math.max(...VCPU_COUNTS);
  const fd = snapshotFile(join(dir, "memory.snap"), maxVcpus * REGION);
  try {
    const code = assemble(dir);
    await faultRound(kvm, code, fd, 1, "turns"); // warm-up (page cache, code paths)
    const rows: string[][] = [];
    const figures: FigureInput[] = [];
    for (const [n, mode] of VCPU_COUNTS.flatMap((n) => (["turns", "threads"] as const).map((m) => [n, m] as const))) {
      const faults: Sample[] = [];
      const populates: Sample[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        faults.push(await faultRound(kvm, code, fd, n, mode));
        populates.push(await populateRound(kvm, fd, n));
      }
      const pages = n * PAGES_PER_VCPU;
      const secs = median(faults.map((s) => s.seconds));
      const popSecs = median(populates.map((s) => s.seconds));
      const rate = pages / secs;
      const popRate = pages / popSecs;
      const usPerPage = (secs * 1e6) / pages;
      const popUsPerPage = (popSecs * 1e6) / pages;
      rows.push([
        String(n), mode, String(n), String(pages), (secs * 1000).toFixed(0), rate.toFixed(0), usPerPage.toFixed(2), popRate.toFixed(0), popUsPerPage.toFixed(2), median(faults.map((s) => s.faults)).toFixed(0),
      ]);
      const note = mode === "turns" ? "vCPUs take turns on the JS thread: one fault at a time whatever N" : "each vCPU on a thread of its own (Vcpu.runOnThread): N faults at once";
      const label = `${n} vCPU${n > 1 ? "s" : ""}${mode === "threads" ? " on threads" : ""}`;
      figures.push({ metric: `${label}: pages/s`, value: rate, unit: "pages/s", reference: { name: "populate(), no faults", value: popRate }, note });
      figures.push({ metric: `${label}: µs/page`, value: usPerPage, unit: "µs/page", reference: { name: "populate(), no faults", value: popUsPerPage }, note });
    }
    console.log(`\nDemand paging through userfaultfd: each vCPU writes once to every page of its own ${MIB_PER_VCPU} MiB region`);
    console.log(`(memfd guest RAM); N handler threads serve the faults from a page-cached file. Medians of ${ROUNDS} rounds.`);
    console.log("\"turns\": the vCPUs run KVM_RUN on the JS thread in turn, so one faults at a time (the fault round trip);");
    console.log("\"threads\": each vCPU on a thread of its own, so N fault at once (parallel scaling; this host has 2 cores).");
    console.log(
      renderTable(["vCPUs", "vCPUs run", "handler threads", "pages", "ms", "pages/s", "µs/page", "populate pages/s", "populate µs/page", "faults"], rows, 0),
    );
    recordBench({ ...BENCH, rows: figures });
  } finally {
    closeSync(fd);
    kvm.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
