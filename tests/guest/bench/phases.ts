// Runs a benchmark guest on the x86 machine and times its phases: the guest prints "phase NAME begin" and
// "phase NAME end COUNT BYTES" on COM1, and the host takes the time as each line arrives (written from the vCPU's
// exits), so the guest needs no clock.
import { MemoryLogger, type PciDevice } from "@vmm/core";
import { Machine, type MachineOptions, type MachineResult } from "@vmm/machine";

export interface Phase {
  count: number;
  bytes: number;
  seconds: number;
}
export type Phases = Record<string, Phase>;

/** A device a bench attaches; closed after the run. */
type BenchDevice = PciDevice & { close?(): void | Promise<void> };
type Devices = (machine: Machine) => BenchDevice[] | Promise<BenchDevice[]>;

/** Machine options a bench may set beside the defaults (vCPUs, vCPU threads). */
export type BenchOptions = Pick<MachineOptions, "cpus" | "vcpuThreads">;

/** The bench machine (64 MiB, the ELF guest, COM1 to `onLine` a line at a time, as each line's newline is written). */
function benchMachine(elf: string, logger: MemoryLogger, onLine: (line: string, machine: Machine) => void, options: BenchOptions = {}): Machine {
  let line = "";
  const machine: Machine = new Machine({
    memoryMiB: 64,
    logger,
    ...options,
    kernel: { kind: "elf", path: elf },
    serial: {
      output: (bytes) => {
        for (const b of bytes) {
          if (b !== 0x0a) {
            line += String.fromCharCode(b);
            continue;
          }
          onLine(line, machine);
          line = "";
        }
      },
    },
  });
  return machine;
}

/** Adds the devices, runs the machine to its end, then closes the devices and the machine (as vmm does). */
async function runWith(machine: Machine, devices: Devices): Promise<MachineResult> {
  const attached: BenchDevice[] = [];
  try {
    for (const device of await devices(machine)) {
      attached.push(device);
      machine.addPciDevice(device);
    }
    return await machine.run();
  } finally {
    // The devices first, then the machine, as vmm does: an unclosed passthrough function's eventfds kept the
    // process alive after the last round.
    for (const device of attached) await device.close?.();
    machine.close();
  }
}

/** Boots `elf` with the devices `devices` makes, until the guest exits, timing its phases; `lines` collects COM1's lines. */
export async function runPhases(elf: string, devices: Devices, options: BenchOptions = {}, lines?: string[]): Promise<Phases> {
  const logger = new MemoryLogger();
  const phases: Phases = {};
  const begun = new Map<string, bigint>();
  let serial = "";
  const machine = benchMachine(elf, logger, (line) => {
    const now = process.hrtime.bigint();
    serial += line + "\n";
    lines?.push(line);
    const m = /^phase (\w+) (begin|end)(?: (\d+) (\d+))?$/.exec(line);
    if (m?.[2] === "begin") begun.set(m[1]!, now);
    else if (m) phases[m[1]!] = { count: Number(m[3]), bytes: Number(m[4]), seconds: Number(now - begun.get(m[1]!)!) / 1e9 };
  }, options);
  const result = await runWith(machine, devices);
  if (result.status !== 0 || serial.includes("mismatch")) throw new Error(`bench guest failed: ${result.reason} ${result.message ?? ""}\n${serial}${logger.lines.join("\n")}`);
  return phases;
}

/**
 * Boots `elf` like runPhases until the guest prints a line starting with `prefix`, then pauses the machine, saves its
 * snapshot into `dir` (vmm's own format: vCPU state, devices, RAM) and stops it. For a C floor that resumes the
 * very guest from there.
 */
export async function snapshotAtLine(elf: string, devices: Devices, prefix: string, dir: string): Promise<void> {
  const logger = new MemoryLogger();
  let saved: Promise<unknown> | undefined;
  const machine = benchMachine(elf, logger, (line, m) => {
    if (saved || !line.startsWith(prefix)) return;
    m.pause();
    // After this exit's run returned (the vCPU is out of KVM_RUN), not from inside the exit.
    saved = new Promise((resolve) => setImmediate(resolve)).then(() => m.saveSnapshot(dir)).finally(() => m.stop("snapshot taken"));
  });
  const result = await runWith(machine, devices);
  if (!saved) throw new Error(`bench guest never printed "${prefix}": ${result.reason} ${result.message ?? ""}\n${logger.lines.join("\n")}`);
  await saved;
}
