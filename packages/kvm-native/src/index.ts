export { KvmError } from "./errors.js";
export { hostKvmArch, KvmArchitectureError, type KvmArch } from "./arch.js";
export { Kvm, kvmAvailability, type Arm64VmOptions } from "./kvm.js";
export { GuestRam, MAX_MEMORY_CHUNK, VmBase, fileDataRanges, type FdLike, type MemoryRegion, type IoEventFdRange, type Registration } from "./vm-base.js";
export { VcpuBase } from "./vcpu-base.js";
export { KvmStats, type KvmStatDescriptor } from "./stats.js";
export { Vm, type GsiRoute, type IrqchipId } from "./vm.js";
export { Vcpu, type SregsInput } from "./vcpu.js";
export {
  createUserfaultPager,
  UserfaultPager,
  userfaultAvailability,
  type UserfaultPagerOptions,
  type UserfaultRegion,
  type UserfaultStats,
} from "./userfault.js";
export type {
  CpuidEntry,
  DescriptorTable,
  DescriptorTableState,
  VcpuExitDispatch,
  Fpu,
  FpuInput,
  MsrEntry,
  Regs,
  RegsInput,
  RunOptions,
  ThreadRunOptions,
  VcpuRunResult,
  Segment,
  SegmentState,
  Sregs,
} from "./types.js";
export {
  InternalError,
  Irqchip,
  KVM_API_VERSION,
  KvmCap,
  KvmDeviceType,
  MpState,
  PAGE_SIZE,
  SystemEvent,
  VcpuEventsFlag,
  X86StateSize,
} from "./constants.js";
// arm64: types and pure encoders work on any host; Arm64Vm/Arm64Vcpu come only from Kvm.createArm64Vm on arm64.
export { Arm64Vm, type Arm64GsiRoute } from "./arm64/vm.js";
export {
  Arm64MpState,
  Arm64Vcpu,
  Arm64VcpuAttr,
  Arm64VcpuFeature,
  arm64FeatureWords,
  arm64InitFeatures,
  type Arm64VcpuAttribute,
  type Arm64VcpuInitOptions,
} from "./arm64/vcpu.js";
export type { Arm64ExitDispatch, Arm64VcpuRunResult } from "./arm64/types.js";
export {
  ARM64_CORE_REGS,
  arm64CoreRegId,
  Arm64FirmwareReg,
  Arm64Pstate,
  arm64RegBytes,
  arm64SysRegId,
  Arm64SysReg,
  type Arm64CoreReg,
} from "./arm64/registers.js";
export { ARM64_FIRST_PPI, ARM64_FIRST_SPI, ARM64_LAST_SPI, arm64IrqLine, arm64SpiGsi, type Arm64Irq } from "./arm64/irq.js";
export { Vgic, VgicAddr, VgicCtrl, VgicGroup, VgicRegionSize, vgicSetup, type VgicConfig } from "./arm64/vgic.js";
