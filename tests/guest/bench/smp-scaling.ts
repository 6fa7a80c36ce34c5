// SMP scaling with vCPU threads (issue #17, direction 3, and its SMP goal: 2 vCPUs computing independently finish in
// at most 0.6x the time of the same work on one). guests/smp-compute.c splits a fixed amount of exit-free work into
// equal shares, one per vCPU; the host times the phase from its lines, for 1 and 2 vCPUs (4 where the host has the cores and KVM allows
// them), with the machine's default (one vCPU on the JS thread, more on a thread each) and with vcpuThreads off (all
// vCPUs take turns on the JS thread).
// The hand-off of exits from a vCPU thread to the JS thread costs latency, so the exit-path guest's per-exit cost
// on one vCPU is measured with threads off and on (both sides sleeping at once, or spinning first), in alternating
// rounds. Run after a build: `pnpm --filter @vmm/guest-tests bench`.
import "reflect-metadata";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { recordBench, recordSkip, type FigureInput } from "@vmm/bench-kit";
import { Tokens, validateOptions, type DeviceType, type PciDevice } from "@vmm/core";
import { virtioPlugin } from "@vmm/device-virtio";
import { buildGuest } from "@vmm/guest-kit";
import { Kvm, KvmCap, kvmAvailability } from "@vmm/kvm-native";
import { runPhases, type BenchOptions } from "./phases.js";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BENCH = { package: "@vmm/guest-tests", name: "smp-scaling", title: "SMP scaling and exit cost with a thread per vCPU" };
const SMP_GOAL = { direction: "<=", limit: 0.6, of: "ratio", source: "issue #17 (SMP)" } as const;

/** The machine's default (a thread per vCPU when there is more than one) carries the goal; "off" is for comparison. */
const MODES: ReadonlyArray<{ name: string; options: BenchOptions; goal: boolean }> = [
  { name: "default (threads when >1 vCPU)", options: {}, goal: true },
  { name: "vcpuThreads off", options: { vcpuThreads: false }, goal: false },
];
/** The exit cost's variants: the JS thread's loop, and vCPU threads whose hand-off sleeps at once or spins first. */
const EXIT_MODES: ReadonlyArray<{ name: string; options: BenchOptions }> = [
  { name: "vcpuThreads off", options: { vcpuThreads: false } },
  { name: "vcpuThreads on, no spin", options: { vcpuThreads: { spinUs: 0 } } },
  { name: "vcpuThreads on, 20 µs spin (default)", options: { vcpuThreads: true } },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** virtio-rng made as vmm makes it (the exit-path guest writes to its common configuration). */
async function virtioRng(container: Parameters<DeviceType["create"]>[0]["container"]): Promise<PciDevice> {
  await virtioPlugin.register(container, {});
  const type = container.resolveAll<DeviceType>(Tokens.DeviceType).find((t) => t.type === "virtio-rng")!;
  return type.create({ container, name: "virtio-rng0" }, validateOptions(type.options, {}, { plugin: virtioPlugin.name, device: "virtio-rng0" }));
}

/** vCPU counts worth timing here: 1 and 2, and 4 where KVM allows it and the host has 4 CPUs to run them on. */
function cpuCounts(): number[] {
  const kvm = Kvm.open();
  try {
    const max = kvm.checkExtension(KvmCap.NR_VCPUS) || 4;
    return [1, 2, 4].filter((n) => n <= 2 || (n <= max && n <= availableParallelism()));
  } finally {
    kvm.close();
  }
}

async function main(): Promise<void> {
  const kvm = kvmAvailability();
  if (!kvm.ok) {
    console.log(`smp-scaling bench SKIPPED: ${kvm.reason}`);
    recordSkip({ ...BENCH, reason: kvm.reason });
    return;
  }
  const compute = await buildGuest("smp-compute", { format: "elf", source: join(pkg, "guests", "smp-compute.c") });
  const exitPath = await buildGuest("exit-path", { format: "elf", source: join(pkg, "guests", "exit-path.c") });
  const counts = cpuCounts();
  const seconds = new Map<string, number[]>();
  const cycles = new Map<string, number[]>();
  const push = (m: Map<string, number[]>, key: string, v: number) => (m.get(key) ?? m.set(key, []).get(key)!).push(v);
  const exitNs = new Map<string, number[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of MODES) {
      for (const cpus of counts) {
        const lines: string[] = [];
        const phases = await runPhases(compute, () => [], { ...mode.options, cpus }, lines);
        push(seconds, `${mode.name}/${cpus}`, phases.compute!.seconds);
        const c = lines.map((l) => /^cycles (\d+)$/.exec(l)?.[1]).find((x) => x !== undefined);
        if (c) push(cycles, `${mode.name}/${cpus}`, Number(c));
      }
    }
    for (const mode of EXIT_MODES) {
      const phases = await runPhases(exitPath, async (m) => [await virtioRng(m.container)], mode.options);
      for (const kind of ["pio", "mmio"] as const) push(exitNs, `${mode.name}/${kind}`, (phases[kind]!.seconds * 1e9) / phases[kind]!.count);
    }
  }

  const figures: FigureInput[] = [];
  console.log(`SMP scaling: the same exit-free work split over the vCPUs (median of ${ROUNDS} rounds, host: ${availableParallelism()} CPUs)\n`);
  console.log("| mode | vCPUs | seconds | guest TSC cycles | time / 1-vCPU time |");
  console.log("|---|---|---|---|---|");
  for (const mode of MODES) {
    const one = median(seconds.get(`${mode.name}/1`)!);
    for (const cpus of counts) {
      const s = median(seconds.get(`${mode.name}/${cpus}`)!);
      const c = cycles.get(`${mode.name}/${cpus}`);
      console.log(`| ${mode.name} | ${cpus} | ${s.toFixed(3)} | ${c ? median(c).toExponential(3) : "-"} | ${(s / one).toFixed(2)} |`);
      if (cpus === 1) continue;
      figures.push({
        metric: `compute on ${cpus} vCPUs, ${mode.name}`,
        value: s,
        unit: "s",
        reference: { name: `the same work on 1 vCPU, ${mode.name}`, value: one },
        goal: cpus === 2 && mode.goal ? SMP_GOAL : undefined,
        note: cpus === 2 ? "smp-compute.c: a fixed amount of exit-free work split into one share per vCPU (perfect scaling: 0.5x)" : undefined,
      });
    }
  }
  console.log(`\nExit cost on one vCPU through the whole machine (exit-path guest, median of ${ROUNDS} rounds)\n`);
  console.log("| exit | mode | ns/exit | vs vcpuThreads off |");
  console.log("|---|---|---|---|");
  for (const kind of ["pio", "mmio"] as const) {
    const off = median(exitNs.get(`vcpuThreads off/${kind}`)!);
    for (const mode of EXIT_MODES) {
      const ns = median(exitNs.get(`${mode.name}/${kind}`)!);
      console.log(`| ${kind} | ${mode.name} | ${ns.toFixed(0)} | ${(ns / off).toFixed(2)} |`);
      if (mode === EXIT_MODES[0]) continue;
      figures.push({
        metric: `${kind} exit, ${mode.name}`,
        value: ns,
        unit: "ns/exit",
        reference: { name: "vcpuThreads off", value: off },
        note: "the hand-off from the vCPU thread to the JS thread and back",
      });
    }
  }
  recordBench({ ...BENCH, rows: figures });
}

await main();
