export { main } from "./main.js";
export type { CliContext } from "./context.js";
export type { MachineConfig, MachineFactory, VirtualMachineResult, VirtualMachine, VcpuRegisters } from "./arch/machine.js";
export { ExitCode, UsageError, DeviceFaultError, renderError } from "./errors.js";
export { parseMemorySize } from "./options/size.js";
export { parseSpec, type Spec } from "./options/spec.js";
export { detectKernelKind, type KernelImageKind } from "./options/kernel.js";
export { IRQCHIPS, type Irqchip } from "./options/run-config.js";
export type { BuiltinPlugin } from "./plugins/builtin.js";
