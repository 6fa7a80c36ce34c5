// The public API of @vmm/machine-arm64: an explicit list (documented in README.md).

export { describeArm64Machine, type Arm64MachineOptions, type Arm64Machine } from "./machine.js";
export {
  buildArm64MemoryMap,
  RAM_BASE_ALIGNMENT,
  MIN_RAM_SIZE,
  type Arm64MemoryMapOptions,
  type Arm64MemoryMap,
  type PciHostWindows,
} from "./memory-map.js";
export { formatRange, type AddressRange, type NamedRange } from "./ranges.js";
export { gicLayout, type GicLayout, type GicVersion } from "./gic.js";
export { Arm64Layout, Arm64Spis, TIMER_PPIS, GIC_NR_IRQS, GIC_SPI_BASE, GIC_PPI_BASE, UART_CLOCK_HZ } from "./layout.js";
export { PCI_INTX_SPIS, pciIntxSpi } from "./pci-intx.js";
export { buildArm64Devicetree, buildArm64Dtb, type Arm64FdtOptions } from "./fdt/machine-fdt.js";
export { cpuMpidr } from "./fdt/cpus.js";
export {
  parseArm64ImageHeader,
  loadArm64Image,
  ARM64_IMAGE_MAGIC,
  type Arm64ImageHeader,
  type Arm64Image,
} from "./loader/image-header.js";
export { DTB_MAX_SIZE, type Arm64LoadPlan, type KernelPlacement } from "./loader/load-plan.js";
// The run time over arm64 KVM (runtime/): the machine and the parts it is assembled from.
export { Arm64KvmMachine, type Arm64KvmMachineOptions } from "./runtime/machine.js";
export { openArm64Kvm, type Arm64Kvm } from "./runtime/kvm.js";
export { Arm64InterruptController, SPI_COUNT, type Arm64MsiMessage } from "./runtime/interrupts.js";
export { V2mFrame, V2mRegister, type V2mFrameOptions } from "./runtime/v2m-frame.js";
export { RequesterMsiVectors, requesterId, ITS_GSI_ROUTING } from "./runtime/msi.js";
export { Arm64RunLoop, type Arm64LoopVcpu, type Arm64RunLoopOptions } from "./runtime/run-loop.js";
export type { SerialOptions } from "./runtime/serial.js";
