// The passthrough device model's public names (the package's src/index.ts re-exports them).
export { VfioPciFunction, createVfioPciFunction, type VfioPciOptions } from "./vfio-pci-function.js";
export type { VfioPciStats, IntxUnmask, VfioInterruptMode } from "./interrupts.js";
export type { RomSource, DeviceIdentity } from "./device-config.js";
export type { BarSpan, MapFd } from "./bar-mappings.js";
export { HIDDEN_CAPABILITIES, HIDDEN_EXTENDED_CAPABILITIES } from "./capability-policy.js";
