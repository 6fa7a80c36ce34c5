// The kernel VFIO backend's public names, for src/index.ts to re-export.
export { KernelVfioDevice, type KernelVfioOpenOptions } from "./kernel-device.js";
export { KernelVfioError } from "./errors.js";
export {
  diagnoseVfioHost,
  diagnosisLines,
  VfioHostError,
  type DiagnoseVfioHostOptions,
  type VfioAccessPath,
  type VfioHostCheck,
  type VfioHostCheckName,
  type VfioHostDiagnosis,
  type VfioHostIdentity,
} from "./diagnose.js";
export type { VfioSyscalls } from "./syscalls.js";
