import { MemoryLogger, type PciDevice } from "@vmm/core";
import { buildGuest, type GuestFormat } from "@vmm/guest-kit";
import { kvmAvailability } from "@vmm/kvm-native";
import { Machine, type MachineResult } from "@vmm/machine";
import type { PciPlacement } from "@vmm/pci";
import { kvmTestGate } from "@vmm/test-support";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const kvmOk = kvmTestGate("@vmm/guest-tests", { what: "KVM guest tests", check: kvmAvailability }).ok;

const guests = join(dirname(fileURLToPath(import.meta.url)), "..", "guests");

export interface GuestRun {
  result: MachineResult;
  serial: string;
  logger: MemoryLogger;
}

/**
 * Builds guests/NAME.c, runs it on a fresh machine with `devices` on the PCI bus (a `[device, placement]` pair
 * places one behind a bridge or as a PCI Express endpoint), and collects COM1.
 */
export async function runGuest(
  name: string,
  devices: (machine: Machine) => Array<PciDevice | [PciDevice, PciPlacement]>,
  format: GuestFormat = "elf",
): Promise<GuestRun> {
  const path = await buildGuest(name, { format, source: join(guests, `${name}.c`) });
  const logger = new MemoryLogger();
  let serial = "";
  const machine = new Machine({
    memoryMiB: 64,
    logger,
    kernel: { kind: format, path },
    serial: { output: (bytes) => void (serial += Buffer.from(bytes).toString("latin1")) },
  });
  try {
    for (const d of devices(machine)) {
      if (Array.isArray(d)) machine.addPciDevice(d[0], d[1]);
      else machine.addPciDevice(d);
    }
    const result = await machine.run();
    return { result, serial, logger };
  } finally {
    machine.close();
  }
}
