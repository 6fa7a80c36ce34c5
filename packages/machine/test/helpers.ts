import { MemoryLogger } from "@vmm/core";
import { buildGuest, type GuestFormat } from "@vmm/guest-kit";
import { kvmAvailability } from "@vmm/kvm-native";
import { kvmTestGate } from "@vmm/test-support";
import { PassThrough } from "node:stream";
import { Machine, type MachineOptions, type MachineResult } from "./internals.js";

export const kvm = kvmTestGate("@vmm/machine", { what: "KVM guest-program tests", check: kvmAvailability });
export const kvmOk = kvm.ok;

export interface GuestRun {
  result: MachineResult;
  serial: string;
  logger: MemoryLogger;
  machine: Machine;
}

/** Builds a guest-kit program and runs it to the end under a fresh Machine, collecting the serial output. */
export async function runGuest(
  name: string,
  format: GuestFormat,
  options: Partial<MachineOptions> & { onSerial?: (text: string, input: PassThrough) => void } = {},
): Promise<GuestRun> {
  const path = await buildGuest(name, { format });
  const logger = new MemoryLogger();
  const input = new PassThrough();
  let serial = "";
  const machine = new Machine({
    memoryMiB: 64,
    logger,
    ...options,
    kernel: { kind: format, path },
    serial: {
      input,
      output: (bytes) => {
        serial += Buffer.from(bytes).toString("latin1");
        options.onSerial?.(serial, input);
      },
    },
  });
  try {
    const result = await machine.run();
    return { result, serial, logger, machine };
  } finally {
    machine.close();
  }
}
