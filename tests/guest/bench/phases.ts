// Runs a benchmark guest on the x86 machine and times its phases: the guest prints "phase NAME begin" and
// "phase NAME end COUNT BYTES" on COM1, and the host takes the time as each line arrives (written from the vCPU's
// exits), so the guest needs no clock.
import { MemoryLogger, type PciDevice } from "@vmm/core";
import { Machine } from "@vmm/machine";

export interface Phase {
  count: number;
  bytes: number;
  seconds: number;
}
export type Phases = Record<string, Phase>;

/** Boots `elf` with the devices `devices` makes, until the guest exits; closes the devices, then the machine. */
type BenchDevice = PciDevice & { close?(): void | Promise<void> };

export async function runPhases(elf: string, devices: (machine: Machine) => BenchDevice[] | Promise<BenchDevice[]>): Promise<Phases> {
  const logger = new MemoryLogger();
  const phases: Phases = {};
  const begun = new Map<string, bigint>();
  let line = "";
  let serial = "";
  const machine = new Machine({
    memoryMiB: 64,
    logger,
    kernel: { kind: "elf", path: elf },
    serial: {
      output: (bytes) => {
        for (const b of bytes) {
          if (b !== 0x0a) {
            line += String.fromCharCode(b);
            continue;
          }
          const now = process.hrtime.bigint();
          serial += line + "\n";
          const m = /^phase (\w+) (begin|end)(?: (\d+) (\d+))?$/.exec(line);
          if (m?.[2] === "begin") begun.set(m[1]!, now);
          else if (m) phases[m[1]!] = { count: Number(m[3]), bytes: Number(m[4]), seconds: Number(now - begun.get(m[1]!)!) / 1e9 };
          line = "";
        }
      },
    },
  });
  const attached: BenchDevice[] = [];
  try {
    for (const device of await devices(machine)) {
      attached.push(device);
      machine.addPciDevice(device);
    }
    const result = await machine.run();
    if (result.status !== 0 || serial.includes("mismatch")) throw new Error(`bench guest failed: ${result.reason} ${result.message ?? ""}\n${serial}${logger.lines.join("\n")}`);
    return phases;
  } finally {
    // The devices first, then the machine, as vmm does: an unclosed passthrough function's eventfds kept the
    // process alive after the last round.
    for (const device of attached) await device.close?.();
    machine.close();
  }
}
