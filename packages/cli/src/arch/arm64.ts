import { writeFile } from "node:fs/promises";
import { ConfigurationError, type GuestArchitecture } from "@vmm/core";
import type { Arm64Kvm, Arm64KvmMachineOptions, Arm64Machine, Arm64MachineOptions } from "@vmm/machine-arm64";
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

/** Writes the devicetree where --dump-dtb says (nothing without it). */
async function dumpDtb(config: MachineConfig, dtb: Uint8Array): Promise<void> {
  if (!config.dumpDtb) return;
  try {
    await writeFile(config.dumpDtb, dtb);
  } catch (error) {
    throw new FileError("devicetree (--dump-dtb)", config.dumpDtb, error);
  }
}

/** The arm64 machine's memory map, devicetree and load plan (no KVM); with --dump-dtb, the devicetree is written. */
export async function describeArm64(config: MachineConfig): Promise<Arm64Machine> {
  const { describeArm64Machine } = await import("@vmm/machine-arm64");
  const machine = describeArm64Machine(arm64MachineOptions(config));
  await dumpDtb(config, machine.dtb);
  return machine;
}

/** Whether this host can run arm64 guests at all (an arm64 host; KVM itself is checked when the VM is created). */
export const hostRunsArm64 = (): boolean => hostArchitecture() === "arm64";

/**
 * The cli's machine config as the run-time machine's options. The UART writes to stdout; it reads stdin unless the
 * console is virtio (then the virtio console owns stdin).
 */
export function arm64KvmMachineOptions(config: MachineConfig, kvm?: Arm64Kvm): Arm64KvmMachineOptions {
  return {
    ...arm64MachineOptions(config),
    name: config.name,
    serial: { input: config.console === "serial" ? process.stdin : undefined, output: process.stdout },
    logger: config.logger,
    debug: config.debug,
    kvm,
  };
}

/** Where an arm64 machine is created: the host's architecture, and KVM (tests give a recording fake). */
export interface Arm64Host {
  /** Default: this host's (hostArchitecture()). */
  readonly arch?: GuestArchitecture;
  /** Default: /dev/kvm, opened by the machine. */
  readonly kvm?: Arm64Kvm;
}

/**
 * The arm64 machine. On a host that cannot run it, it is described (and its devicetree dumped) and refused in one
 * line; on an arm64 host it is @vmm/machine-arm64's Arm64KvmMachine over KVM, written for such hosts but never run
 * on one (packages/machine-arm64/README.md).
 */
export async function createArm64Machine(config: MachineConfig, host: Arm64Host = {}): Promise<VirtualMachine> {
  const arch = host.arch ?? hostArchitecture();
  if (arch !== "arm64") {
    await describeArm64(config);
    throw new ConfigurationError(
      `an arm64 guest runs on an arm64 host with KVM; this host is ${arch ?? process.arch} (--dump-dtb FILE writes the guest's devicetree without running it)`,
    );
  }
  const { Arm64KvmMachine } = await import("@vmm/machine-arm64");
  const machine = new Arm64KvmMachine(arm64KvmMachineOptions(config, host.kvm));
  try {
    await dumpDtb(config, machine.description.dtb);
  } catch (error) {
    machine.close();
    throw error;
  }
  return machine;
}
