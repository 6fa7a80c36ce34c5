import type { MachineOptions } from "@vmm/machine";
import type { MachineConfig, VirtualMachine } from "./machine.js";

/**
 * The cli's machine config as @vmm/machine's options. COM1 writes to stdout; it reads stdin unless the console is
 * virtio (then the virtio console owns stdin).
 */
export function x86MachineOptions(config: MachineConfig): MachineOptions {
  return {
    name: config.name,
    memory: config.memory,
    cpus: config.cpus,
    kernel: { kind: config.kernel.kind, path: config.kernel.path, bytes: config.kernel.bytes },
    initrd: config.initrd,
    cmdline: config.params || undefined,
    serial: { input: config.console === "serial" ? process.stdin : undefined, output: process.stdout },
    logger: config.logger,
    debug: config.debug,
  };
}

/** The x86_64 machine from @vmm/machine (loaded on first use: it opens /dev/kvm). */
export async function createX86Machine(config: MachineConfig): Promise<VirtualMachine> {
  const { Machine } = await import("@vmm/machine");
  return new Machine(x86MachineOptions(config));
}
