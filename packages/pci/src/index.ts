// The public API of @vmm/pci: an explicit list (documented in README.md). Everything else is internal and may
// change without notice; api-report.md records this surface and CI fails when it changes without a changeset.

// The bus a machine builds, and what it tells the machine.
export {
  PciBus,
  DEFAULT_INTX_GSIS,
  swizzle,
  formatAddress,
  type PciBusOptions,
  type ConfigTraceEvent,
  type ConfigStats,
  type IntxRoute,
  type PciPlacement,
  type PciTopologyNode,
} from "./bus.js";
export type { ConfigMechanism } from "./access/target.js";
export type { AddressWindow, PciWindows } from "./allocator.js";
export type { BarConflict } from "./bars/bar-mapper.js";
export { CF8_ADDRESS_PORT, CF8_DATA_PORT } from "./access/cf8.js";
export { ECAM_BUS_SIZE } from "./access/ecam.js";

// Emulated functions: the base class devices extend, and what its subclasses see.
export { PciFunction, type PciFunctionOptions, type BarOverlay } from "./function.js";
export { FunctionIntx } from "./intx.js";
export { ConfigSpace, type ConfigOverlay, type PhysicalConfig } from "./config/config-space.js";
export { MaskedBytes } from "./config/masked-bytes.js";
export { CapabilityChain } from "./capabilities/chain.js";
export { Reg, Command, Status, ROM_ENABLE, type HeaderRegister } from "./config/header.js";
export { withExpansionRom, romBarSize } from "./expansion-rom.js";

// Bridges: type 1 headers, PCI Express root ports, what the bus reads back from them.
export {
  PciBridge,
  PcieRootPort,
  BridgeReg,
  BridgeControl,
  PCI_BRIDGE_CLASS,
  ROOT_PORT_VENDOR_ID,
  ROOT_PORT_DEVICE_ID,
  DEFAULT_BRIDGE_RESERVE,
  readBridgeState,
  bridgeForwards,
  isBridge,
  type PciBridgeOptions,
  type PcieRootPortOptions,
  type BridgeReserve,
  type BridgeState,
  type ForwardRange,
} from "./bridge.js";

// Capabilities.
export { MsiCapability, MSI_CAPABILITY_ID, type MsiOptions } from "./capabilities/msi.js";
export { MsixCapability, MSIX_CAPABILITY_ID, MSIX_ENTRY_SIZE, type MsixOptions, type MsixChange } from "./capabilities/msix.js";
export {
  expressCapability,
  EXPRESS_CAPABILITY_ID,
  EXPRESS_TYPE_CODE,
  ExpressReg,
  EXPRESS_FLAGS_SLOT,
  EXPRESS_LINK_2_5GT_X1,
  EXPRESS_LNKCTL_WRITABLE,
  type ExpressDeviceType,
  type ExpressPortOptions,
} from "./capabilities/express.js";

// Host bridges.
export { HostBridge, HOST_BRIDGE_VENDOR_ID, HOST_BRIDGE_DEVICE_ID, HOST_BRIDGE_CLASS } from "./host-bridge.js";
export {
  Q35HostBridge,
  Q35Reg,
  QEMU_SUBSYSTEM_VENDOR_ID,
  QEMU_SUBSYSTEM_ID,
  type Q35HostBridgeOptions,
  type EcamWindow,
  type PamSegment,
} from "./q35-host-bridge.js";
