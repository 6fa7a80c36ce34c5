import type { PciDevice } from "@vmm/core";
import type { VirtualMachine } from "./arch/machine.js";
import type { VmStats } from "./control/protocol.js";
import { describe } from "./errors.js";

/**
 * The machine's counters and those of every device that keeps some (`vmm run --stats`, `vmm stat`). A device whose
 * counters() throws is left out and reported through `onProblem`.
 */
export function collectStats(machine: VirtualMachine, devices: readonly PciDevice[], onProblem: (problem: string) => void): VmStats {
  const perDevice: Record<string, Readonly<Record<string, number>>> = {};
  for (const device of devices) {
    try {
      const counters = device.counters?.();
      if (counters) perDevice[device.name] = counters;
    } catch (error) {
      onProblem(`stats: ${device.name}: counters() failed: ${describe(error)}`);
    }
  }
  return { machine: machine.counters?.() ?? {}, devices: perDevice };
}

/** One line per counter set: `WHO: key=value ...`, the machine's (named `vmName`) first; empty sets are left out. */
export function statsLines(vmName: string, stats: VmStats): string[] {
  const line = (who: string, counters: Readonly<Record<string, number>>) => `${who}: ${Object.entries(counters).map(([k, v]) => `${k}=${v}`).join(" ")}`;
  return [
    ...(Object.keys(stats.machine).length ? [line(vmName, stats.machine)] : []),
    ...Object.entries(stats.devices).map(([name, counters]) => line(name, counters)),
  ];
}
