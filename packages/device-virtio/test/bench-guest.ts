// What the benchmark guests' KVM tests share: one run of a guest driver from bench/guest on a fresh machine.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { IoEventRegistry } from "@vmm/core";
import { buildGuest } from "@vmm/guest-kit";
import type { Machine, MachineResult } from "@vmm/machine";
import { runGuestMachine } from "../bench/guest-machine.mjs";
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
  const run = await runGuestMachine({ elf, command, PciFunction: VirtioPciFunction, name, device, ioevents, look });
  return { result: run.result, serial: run.text, fn: run.fn, seen: run.seen };
}
