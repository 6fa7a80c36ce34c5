import { closeSync, openSync, writeSync } from "node:fs";
import { ConfigurationError } from "@vmm/core";
import type { MachineOptions } from "@vmm/machine";
import type { MachineConfig, VirtualMachine } from "./machine.js";

/**
 * The cli's machine config as @vmm/machine's options. COM1 writes to stdout; it reads stdin unless the console is
 * virtio (then the virtio console owns stdin).
 */
export function x86MachineOptions(config: MachineConfig): MachineOptions {
  const kind = config.kernel?.kind;
  if (kind === "arm64-image") throw new ConfigurationError(`kernel '${config.kernel!.path}' is an arm64 Image; run it with --arch arm64`);
  return {
    name: config.name,
    memory: config.memory,
    cpus: config.cpus,
    vcpuThreads: config.vcpuThreads,
    kernel: config.kernel && kind && { kind, path: config.kernel.path, bytes: config.kernel.bytes },
    firmware: config.firmware,
    debugcon: config.debugcon ? fileSink(config.debugcon) : undefined,
    initrd: config.initrd,
    cmdline: config.params || undefined,
    serial: { input: config.console === "serial" ? process.stdin : undefined, output: process.stdout },
    logger: config.logger,
    debug: config.debug,
  };
}

/** Bytes appended to a file (created or truncated), a line per write; the rest when the process exits. */
function fileSink(path: string): (bytes: Uint8Array) => void {
  const fd = openSync(path, "w");
  let pending: number[] = [];
  const flush = () => {
    if (pending.length) writeSync(fd, Uint8Array.from(pending));
    pending = [];
  };
  process.once("exit", () => {
    flush();
    closeSync(fd);
  });
  return (bytes) => {
    for (const b of bytes) {
      pending.push(b);
      if (b === 0x0a) flush();
    }
  };
}

/** The x86_64 machine from @vmm/machine (loaded on first use: it opens /dev/kvm). */
export async function createX86Machine(config: MachineConfig): Promise<VirtualMachine> {
  const { Machine } = await import("@vmm/machine");
  const machine = new Machine(x86MachineOptions(config));
  return Object.assign(machine, { pciFunctions: () => machine.pci.bus.functions() });
}
