import { ConfigurationError } from "@vmm/core";
import type { MachineConfig, VirtualMachine } from "./machine.js";

interface MachineModule {
  Machine?: new (options: unknown) => VirtualMachine;
}

/** The x86_64 machine from @vmm/machine, given the cli's machine config. */
export async function createX86Machine(config: MachineConfig): Promise<VirtualMachine> {
  const mod = (await import("@vmm/machine")) as unknown as MachineModule;
  if (typeof mod.Machine !== "function") {
    throw new ConfigurationError("the x86_64 machine (@vmm/machine) is not available in this build");
  }
  return new mod.Machine({
    name: config.name,
    memory: config.memory,
    cpus: config.cpus,
    kernel: config.kernel,
    initrd: config.initrd,
    cmdline: config.params,
    console: config.console,
    debug: config.debug,
    logger: config.logger,
  });
}
