// Exit-cost benchmark: ns per port-I/O and MMIO exit through Vcpu.run with a TypeScript handler,
// against the C floor (bench/floor.c) running the same guest, interleaved in one run; plus the
// lateness of a 10 ms setInterval during an exit storm.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { recordBench, recordSkip, renderTable, type FigureInput } from "@vmm/bench-kit";
import { Kvm, kvmAvailability, type VcpuExitDispatch, type Vcpu } from "@vmm/kvm-native";

const N = Number(process.env.BENCH_EXITS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const CODE = 0x1000;
const here = dirname(fileURLToPath(import.meta.url));
const BENCH = { package: "@vmm/kvm-native", name: "exit-cost", title: "ns per port-I/O and MMIO exit through Vcpu.run beside the C floor" };
// Issue #17's goal for the exit cost: at most 1.10x the C floor (it asks for it through the whole machine; this
// bench measures Vcpu.run with a counting handler, the lower bound of that).
const EXIT_GOAL = { direction: "<=", limit: 1.1, of: "ratio", source: "issue #17" } as const;
const pkg = join(here, "..", "..");

const GUESTS = {
  pio: `1: out %al, $0x10\n jmp 1b`,
  mmio: `mov $0x2000, %ax\n mov %ax, %ds\n1: mov %al, 0x10\n jmp 1b`,
} as const;
type Kind = keyof typeof GUESTS;

function assemble(dir: string, name: string, source: string): string {
  const s = join(dir, `${name}.s`);
  writeFileSync(s, `.code16\n${source}\n`);
  execFileSync("as", ["--64", "-o", join(dir, `${name}.o`), s]);
  execFileSync("ld", ["-m", "elf_x86_64", "-Ttext", `0x${CODE.toString(16)}`, "-e", `0x${CODE.toString(16)}`, "-o", join(dir, `${name}.elf`), join(dir, `${name}.o`)]);
  const bin = join(dir, `${name}.bin`);
  execFileSync("objcopy", ["-O", "binary", "-j", ".text", join(dir, `${name}.elf`), bin]);
  return bin;
}

interface Sample {
  /** wall-clock ns per exit */
  nsPerExit: number;
  /** CPU time (user + system, all threads of the process) per exit: less sensitive to a busy host */
  cpuNsPerExit: number;
}

function floor(bin: string, exits: number, floorExe: string): Sample {
  const r = spawnSync(floorExe, [bin, String(exits)], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`floor failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Sample;
}

/** The VMM path: Vcpu.run with a TypeScript handler that counts; re-enters through setImmediate on yield. */
async function vmm(bin: string, exits: number): Promise<Sample & { yields: number }> {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  try {
    const ram = vm.allocateMemory(0x10000);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram });
    ram.set(readFileSync(bin), CODE);
    const vcpu: Vcpu = vm.createVcpu(0);
    vcpu.setSregs({ cs: { ...vcpu.getSregs().cs, base: 0, selector: 0 } });
    vcpu.setRegs({ rip: CODE, rflags: 2, rsp: 0x8000 });
    let count = 0;
    let sum = 0;
    const dispatch: VcpuExitDispatch = {
      pio(_port, _size, _isWrite, value) {
        sum += value;
        if (++count === exits) vcpu.requestStop();
        return 0;
      },
      mmio(_addr, _size, _isWrite, lo) {
        sum += lo;
        if (++count === exits) vcpu.requestStop();
        return 0;
      },
    };
    let yields = 0;
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    while (count < exits) {
      const r = vcpu.run(dispatch);
      if (r.reason !== "yield") throw new Error(`unexpected exit ${JSON.stringify(r)}`);
      if (count < exits) {
        yields++;
        await new Promise((res) => setImmediate(res));
      }
    }
    const ns = Number(process.hrtime.bigint() - t0);
    const cpu = process.cpuUsage(c0);
    if (sum < 0) console.log(sum);
    return { nsPerExit: ns / exits, cpuNsPerExit: ((cpu.user + cpu.system) * 1000) / exits, yields };
  } finally {
    vm.close();
    kvm.close();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

async function main(): Promise<void> {
  const avail = kvmAvailability();
  if (!avail.ok) {
    console.warn(`exit-bench: SKIPPED, KVM unavailable: ${avail.reason}`);
    recordSkip({ ...BENCH, reason: avail.reason });
    return;
  }
  const out = join(pkg, "build", "bench");
  mkdirSync(out, { recursive: true });
  const floorExe = join(out, "floor");
  execFileSync("gcc", ["-O2", "-Wall", "-o", floorExe, join(pkg, "bench", "floor.c")], { stdio: "inherit" });
  const dir = mkdtempSync(join(tmpdir(), "exit-bench-"));
  try {
    const bins = { pio: assemble(dir, "pio", GUESTS.pio), mmio: assemble(dir, "mmio", GUESTS.mmio) };
    // warm-up
    floor(bins.pio, 5000, floorExe);
    await vmm(bins.pio, 5000);

    const rows: string[][] = [];
    const figures: FigureInput[] = [];
    for (const kind of Object.keys(GUESTS) as Kind[]) {
      const f: Sample[] = [];
      const v: Sample[] = [];
      let yields = 0;
      for (let i = 0; i < ROUNDS; i++) {
        // alternate the order so neither side always runs first after the other
        if (i % 2 === 0) f.push(floor(bins[kind], N, floorExe));
        const r = await vmm(bins[kind], N);
        v.push(r);
        yields += r.yields;
        if (i % 2 === 1) f.push(floor(bins[kind], N, floorExe));
      }
      for (const [label, key] of [["wall", "nsPerExit"], ["cpu", "cpuNsPerExit"]] as const) {
        const fm = median(f.map((x) => x[key]));
        const vm = median(v.map((x) => x[key]));
        const pairRatio = median(f.map((x, i) => v[i]![key] / x[key]));
        rows.push([
          kind, label, String(N), fm.toFixed(0), vm.toFixed(0), `${(vm / fm).toFixed(3)}x`, `${pairRatio.toFixed(3)}x`,
          (vm - fm).toFixed(0), (yields / ROUNDS).toFixed(0),
        ]);
        figures.push({
          metric: `${kind} exit (${label})`,
          value: vm,
          unit: "ns/exit",
          reference: { name: "C floor", value: fm },
          goal: EXIT_GOAL,
          note: "Vcpu.run with a counting handler, not yet the whole machine the goal names; medians of interleaved rounds",
        });
      }
      const show = (xs: Sample[]) => xs.map((x) => `${x.nsPerExit.toFixed(0)}/${x.cpuNsPerExit.toFixed(0)}`).join(" ");
      console.error(`${kind} wall/cpu ns per exit: floor ${show(f)} | vmm ${show(v)}`);
    }
    const header = ["exits", "clock", "N", "floor ns/exit", "vmm ns/exit", "vmm/floor", "median pair ratio", "added ns", "yields/run"];
    console.log(`\nExit cost, medians of ${ROUNDS} interleaved rounds (floor = bench/floor.c, vmm = Vcpu.run + TS handler;`);
    console.log(`wall = elapsed time, cpu = process CPU time incl. guest time, which a busy host disturbs less)`);
    console.log(renderTable(header, rows, 0));
    console.log("target: the VMM's own cost at most 15% over the floor (vmm/floor <= 1.15); on a busy host compare the cpu rows");

    // Event-loop lateness of a 10 ms interval during a port-I/O exit storm, next to the same interval in an
    // idle process over the same time (the host's own scheduling noise).
    const lateness = async (during: () => Promise<unknown>): Promise<number[]> => {
      const late: number[] = [];
      let last = performance.now();
      const timer = setInterval(() => {
        const now = performance.now();
        late.push(now - last - 10);
        last = now;
      }, 10);
      await during();
      clearInterval(timer);
      return late;
    };
    let storm = { nsPerExit: 0, yields: 0 };
    const stormLate = await lateness(async () => { storm = await vmm(bins.pio, N); });
    const stormMs = (storm.nsPerExit * N) / 1e6;
    const idleLate = await lateness(() => new Promise((r) => setTimeout(r, stormMs)));
    console.log(`\nsetInterval(10 ms) lateness during a ${N}-exit storm (${stormMs.toFixed(0)} ms, ${storm.yields} yields), and idle:`);
    const row = (name: string, late: number[]) => [
      name, String(late.length), pct(late, 0.5).toFixed(2), pct(late, 0.9).toFixed(2), pct(late, 0.99).toFixed(2), Math.max(...late).toFixed(2),
    ];
    console.log(renderTable(["", "ticks", "p50 ms", "p90 ms", "p99 ms", "max ms"], [row("storm", stormLate), row("idle", idleLate)], 1));
    figures.push({ metric: "setInterval(10 ms) p99 lateness in an exit storm", value: pct(stormLate, 0.99), unit: "ms", reference: { name: "idle process", value: pct(idleLate, 0.99) } });
    recordBench({ ...BENCH, rows: figures });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
