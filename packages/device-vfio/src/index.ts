// The public API of @vmm/device-vfio: an explicit list (documented in README.md); api-report.md records it.

// Host addresses and what the host offers for kernel VFIO.
export { parseHostAddress, formatHostAddress } from "./host-address.js";
export { vfioHostStatus, hostFunctionStatus, type VfioHostStatus } from "./host-status.js";

// The backend contract both passthrough backends implement (linux/vfio.h shapes).
export {
  VfioRegion,
  VfioIrq,
  VfioDeviceFlags,
  VfioRegionFlags,
  VfioIrqInfoFlags,
  VfioBackendLostError,
  type VfioBackend,
  type VfioDeviceInfo,
  type VfioRegionInfo,
  type VfioMmapArea,
  type VfioIrqInfo,
  type VfioIrqSet,
  type VfioDmaRegion,
  type VfioReservedRange,
} from "./backend/backend.js";

// The device model over either backend.
export {
  VfioPciFunction,
  createVfioPciFunction,
  HIDDEN_CAPABILITIES,
  HIDDEN_EXTENDED_CAPABILITIES,
  type VfioPciOptions,
  type VfioPciStats,
  type IntxUnmask,
  type VfioInterruptMode,
  type RomSource,
  type DeviceIdentity,
  type BarSpan,
  type MapFd,
} from "./device/index.js";

// Plugin quirks: which registered quirks match a device, and laying their windows.
export { applyQuirks, registeredQuirks, quirkMatches, type QuirkHost } from "./quirks/index.js";

// The vfio-user client backend.
export {
  VfioUserClient,
  VfioUserCommandError,
  VfioUserProtocolError,
  VfioUserTimeoutError,
  VFIO_USER_MAJOR,
  VFIO_USER_MINOR,
  VfioUserCommand,
  type VfioUserClientOptions,
  type VfioUserServerLimits,
} from "./vfio-user/index.js";
export { VfioDecodeError } from "./uapi/index.js";

// The kernel VFIO backend and the host diagnosis behind `vmm doctor vfio`.
export {
  KernelVfioDevice,
  KernelVfioError,
  diagnoseVfioHost,
  diagnosisLines,
  VfioHostError,
  type KernelVfioOpenOptions,
  type DiagnoseVfioHostOptions,
  type VfioAccessPath,
  type VfioHostCheck,
  type VfioHostCheckName,
  type VfioHostDiagnosis,
  type VfioHostIdentity,
  type VfioSyscalls,
} from "./kernel/index.js";

// The built-in plugin: the vfio-user and vfio-pci device types.
export { vfioPlugin, VFIO_PLUGIN_NAME } from "./plugin.js";
