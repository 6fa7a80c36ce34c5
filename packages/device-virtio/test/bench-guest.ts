// What the benchmark guests' KVM tests share: one run of a guest driver from bench/guest on a fresh machine.
import { dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { type IoEventRegistry, MemoryLogger, Tokens } from "@vmm/core";
import { buildGuest } from "@vmm/guest-kit";
import { Machine, type MachineResult } from "@vmm/machine";
import type { VirtioDevice } from "../src/device.js";
import { VirtioPciFunction } from "../src/transport/virtio-pci.js";

const benchGuests = join(dirname(fileURLToPath(import.meta.url)), "..", "bench", "guest");

/** How a bench guest's run ended, everything it printed on COM1, its virtio function and what `look` saw. */
export interface BenchGuestRun<T> {
  result: MachineResult;
  serial: string;
  fn: VirtioPciFunction;
  seen: T;
}

/** The device a bench guest drives, on a virtio-pci function `name`; doorbells through `ioevents(machine)` if given. */
export interface BenchGuestDevice {
  name: string;
  device: VirtioDevice;
  ioevents?: (machine: Machine) => IoEventRegistry;
}

/**
 * Boots bench/guest/<program>.c on a fresh 64 MiB machine with the given device (doorbells through the machine's
 * ioevent registry unless `ioevents` says otherwise), sends it `command` (then "q") once it printed "ready", and resolves
 * when it exited (stopped after 60 s), with what `look(machine)` returned after the run, while the machine exists.
 */
export async function runBenchGuest<T = undefined>(
  program: string,
  command: string,
  { name, device, ioevents }: BenchGuestDevice,
  look?: (machine: Machine) => T,
): Promise<BenchGuestRun<T>> {
  const elf = await buildGuest(program, { format: "elf", source: join(benchGuests, `${program}.c`) });
  const input = new PassThrough();
  let serial = "";
  const machine = new Machine({
    memoryMiB: 64,
    logger: new MemoryLogger(),
    kernel: { kind: "elf", path: elf },
    serial: {
      input,
      output: (b) => {
        const before = serial;
        serial += Buffer.from(b).toString("latin1");
        if (!before.includes("ready") && serial.includes("ready")) input.write(`${command}\nq\n`);
      },
    },
  });
  const c = machine.container;
  const fn = new VirtioPciFunction({
    name,
    device,
    memory: c.resolve(Tokens.GuestMemory),
    ioevents: ioevents?.(machine) ?? c.resolve(Tokens.IoEvents),
    logger: c.resolve(Tokens.Logger),
  });
  machine.addPciDevice(fn);
  const timer = setTimeout(() => machine.stop("test timeout"), 60_000);
  try {
    const result = await machine.run();
    return { result, serial, fn, seen: look?.(machine) as T };
  } finally {
    clearTimeout(timer);
    machine.close();
    await fn.close();
  }
}
