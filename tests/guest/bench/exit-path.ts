// Exit cost through the whole machine (issue #17): a guest's port writes to the POST code port (the machine's port
// I/O space, a device handler) and MMIO writes to virtio-rng's common configuration (the PCI bus's BAR window, the
// virtio transport's register table), timed per exit, beside the C floor (packages/kvm-native/bench/floor.c: the
// smallest KVM loop that only counts the same kind of exit), in alternating rounds of one run.
// Run after a build: `pnpm --filter @vmm/guest-tests bench`.
import "reflect-metadata";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { recordBench, recordSkip, type FigureInput } from "@vmm/bench-kit";
import { Tokens, validateOptions, type DeviceType, type PciDevice } from "@vmm/core";
import { virtioPlugin } from "@vmm/device-virtio";
import { buildGuest } from "@vmm/guest-kit";
import { kvmAvailability } from "@vmm/kvm-native";
import { runPhases, type Phases } from "./phases.js";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const root = join(pkg, "..", "..");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const FLOOR_EXITS = 100_000;
const BENCH = { package: "@vmm/guest-tests", name: "exit-path", title: "ns per exit through the whole machine beside the C floor" };
const EXIT_GOAL = { direction: "<=", limit: 1.1, of: "ratio", source: "issue #17" } as const;

/** The floor's guests: real-mode loops of one exit kind (as packages/kvm-native's exit bench runs them). */
const FLOOR_GUESTS = {
  pio: `1: out %al, $0x10\n jmp 1b`,
  mmio: `mov $0x2000, %ax\n mov %ax, %ds\n1: mov %al, 0x10\n jmp 1b`,
} as const;
type Kind = keyof typeof FLOOR_GUESTS;

function floorTools(dir: string): { exe: string; guests: Record<Kind, string> } {
  const exe = join(dir, "floor");
  execFileSync("gcc", ["-O2", "-o", exe, join(root, "packages", "kvm-native", "bench", "floor.c")]);
  const guests = {} as Record<Kind, string>;
  for (const kind of Object.keys(FLOOR_GUESTS) as Kind[]) {
    const base = join(dir, kind);
    writeFileSync(`${base}.s`, `.code16\n${FLOOR_GUESTS[kind]}\n`);
    execFileSync("as", ["--64", "-o", `${base}.o`, `${base}.s`]);
    execFileSync("ld", ["-m", "elf_x86_64", "-Ttext", "0x1000", "-e", "0x1000", "-o", `${base}.elf`, `${base}.o`]);
    execFileSync("objcopy", ["-O", "binary", "-j", ".text", `${base}.elf`, `${base}.bin`]);
    guests[kind] = `${base}.bin`;
  }
  return { exe, guests };
}

/** The floor's wall-clock ns per exit. */
function floorNs(exe: string, guest: string): number {
  const r = spawnSync(exe, [guest, String(FLOOR_EXITS)], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`floor failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { nsPerExit: number }).nsPerExit;
}

/** virtio-rng made as vmm makes it: the built-in plugin's device type, from the machine's container. */
async function virtioRng(container: Parameters<DeviceType["create"]>[0]["container"]): Promise<PciDevice> {
  await virtioPlugin.register(container, {});
  const type = container.resolveAll<DeviceType>(Tokens.DeviceType).find((t) => t.type === "virtio-rng")!;
  return type.create({ container, name: "virtio-rng0" }, validateOptions(type.options, {}, { plugin: virtioPlugin.name, device: "virtio-rng0" }));
}

async function main(): Promise<void> {
  const kvm = kvmAvailability();
  if (!kvm.ok) {
    console.log(`exit-path bench SKIPPED: ${kvm.reason}`);
    recordSkip({ ...BENCH, reason: kvm.reason });
    return;
  }
  const elf = await buildGuest("exit-path", { format: "elf", source: join(pkg, "guests", "exit-path.c") });
  const dir = mkdtempSync(join(tmpdir(), "vmm-exit-path-"));
  const machine: Phases[] = [];
  const floor: Record<Kind, number[]> = { pio: [], mmio: [] };
  try {
    const tools = floorTools(dir);
    for (let round = 0; round < ROUNDS; round++) {
      machine.push(await runPhases(elf, async (m) => [await virtioRng(m.container)]));
      for (const kind of ["pio", "mmio"] as const) floor[kind].push(floorNs(tools.exe, tools.guests[kind]));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const figures: FigureInput[] = [];
  console.log(`exit cost through the whole machine beside the C floor (median of ${ROUNDS} alternating rounds)\n`);
  console.log("| exit | machine ns/exit | C floor ns/exit | machine/floor |");
  console.log("|---|---|---|---|");
  const rows: Array<[Kind, string]> = [
    ["pio", "port write to a device on the port I/O space (POST code port)"],
    ["mmio", "MMIO write to a PCI BAR (virtio-rng common configuration)"],
  ];
  for (const [kind, what] of rows) {
    const ours = median(machine.map((p) => (p[kind]!.seconds * 1e9) / p[kind]!.count));
    const base = median(floor[kind]);
    console.log(`| ${what} | ${ours.toFixed(0)} | ${base.toFixed(0)} | ${(ours / base).toFixed(2)} |`);
    figures.push({ metric: `${kind} exit through the machine`, value: ours, unit: "ns/exit", reference: { name: "C floor", value: base }, goal: EXIT_GOAL });
  }
  recordBench({ ...BENCH, rows: figures });
}

await main();
