export { KvmError } from "./errors.js";
export { Kvm, kvmAvailability } from "./kvm.js";
export { GuestRam, MAX_MEMORY_CHUNK, Vm, type FdLike, type MemoryRegion, type GsiRoute, type IoEventFdRange, type Registration } from "./vm.js";
export { Vcpu, type SregsInput } from "./vcpu.js";
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
  MpState,
  PAGE_SIZE,
  SystemEvent,
} from "./constants.js";
