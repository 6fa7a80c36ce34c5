import { writeFile } from "node:fs/promises";
import { ConfigurationError } from "@vmm/core";
import type { Arm64Machine, Arm64MachineOptions } from "@vmm/machine-arm64";
import { FileError } from "../errors.js";
import type { Irqchip } from "../options/run-config.js";
import { hostArchitecture } from "./index.js";
import type { MachineConfig, VirtualMachine } from "./machine.js";

/** kvmtool's --irqchip names onto the arm64 machine's GIC versions (v3 comes with an ITS, v2 with a v2m frame). */
const GIC_OF: Readonly<Record<Irqchip, "v3" | "v2">> = { "gicv3-its": "v3", gicv3: "v3", gicv2m: "v2", gicv2: "v2" };

/** The cli's machine config as @vmm/machine-arm64's options. */
export function arm64MachineOptions(config: MachineConfig): Arm64MachineOptions {
  return {
    ramSize: config.memory,
    ramBase: config.memBase,
    cpus: config.cpus,
    gic: config.irqchip ? GIC_OF[config.irqchip] : undefined,
    kernel: config.kernel?.bytes,
    initrd: config.initrd?.bytes,
    cmdline: config.params || undefined,
  };
}

/** The arm64 machine's memory map, devicetree and load plan (no KVM); with --dump-dtb, the devicetree is written. */
export async function describeArm64(config: MachineConfig): Promise<Arm64Machine> {
  const { describeArm64Machine } = await import("@vmm/machine-arm64");
  const machine = describeArm64Machine(arm64MachineOptions(config));
  if (config.dumpDtb) {
    try {
      await writeFile(config.dumpDtb, machine.dtb);
    } catch (error) {
      throw new FileError("devicetree (--dump-dtb)", config.dumpDtb, error);
    }
  }
  return machine;
}

/** Whether this host can run arm64 guests at all (an arm64 host; KVM itself is checked when the VM is created). */
export const hostRunsArm64 = (): boolean => hostArchitecture() === "arm64";

/**
 * The arm64 machine. It is described (and its devicetree dumped) on any host; running it needs an arm64 host with
 * KVM, and the runtime that drives arm64 KVM has not been written yet, so an arm64 host is refused in one line too.
 */
export async function createArm64Machine(config: MachineConfig): Promise<VirtualMachine> {
  await describeArm64(config);
  if (!hostRunsArm64()) {
    throw new ConfigurationError(
      `an arm64 guest runs on an arm64 host with KVM; this host is ${hostArchitecture() ?? process.arch} (--dump-dtb FILE writes the guest's devicetree without running it)`,
    );
  }
  throw new ConfigurationError("running arm64 guests is not available in this version of vmm: its arm64 machine is described (--dump-dtb) but not yet driven through KVM");
}
