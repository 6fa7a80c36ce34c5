// The public API of @vmm/core: an explicit list (documented in README.md); api-report.md records it and CI fails
// when it changes without a changeset.

// Errors.
export { VmmError, ConfigurationError, PluginError, GuestError, GuestMemoryError, AddressConflictError } from "./errors.js";

// Address spaces and guest memory.
export { AddressSpace, allOnes, createPortIoSpace, createMmioSpace, type AccessSize, type SmallAccessSize, type IoHandler, type IoRange, type Registration, type UnhandledAccess } from "./address-space.js";
export { GuestMemory, type RamRegion } from "./guest-memory.js";

// Interrupts: lines, MSI messages and the per-vector MSI delivery a machine hands each function.
export { EdgeForwardingLine, SharedLine, type InterruptLine, type IrqfdConnector, type MsiMessage, type MsiController, type InterruptController } from "./interrupts.js";
export { SignalMsiVectors, type MsiVector, type MsiVectorSet, type MsiVectorFactory } from "./msi-vectors.js";

// The PCI device contract.
export { type PciAddress, type BarKind, type PciBarDescriptor, type PciBarWindow, type PciAttachContext, type PciDevice, type PciCapability, type PciExtendedCapability } from "./pci-device.js";

// The register-table engine and its bit helpers.
export { RegisterTable, split64, type RegisterAccess, type RegisterWriteResult, type NumericField, type RegisterSpec, type NarrowWritePolicy, type RegisterRefusal, type RegisterTableOptions } from "./registers/index.js";
export { readLE, writeLE, nextPowerOfTwo, widthMask, toUnsigned, extractBytes, type RegisterWidth } from "./registers/index.js";

// Snapshots: the state every device saves and restores.
export { SnapshotError, encodeBytes, decodeBytes, stateData, stateInt, type StateValue, type DeviceState, type Snapshottable } from "./snapshot.js";

// Services a machine provides to devices, and their DI tokens.
export { TrappingIoEvents, MmioBackedMemoryMapper, type IoEventRequest, type Handle, type IoEventRegistry, type MemoryMapper, type MappedRegion } from "./services.js";
export { type Keyboard } from "./services/keyboard.js";
export { SCREEN_INFO_SIZE, type ScreenInfoProvider, type BootFramebuffer } from "./services/boot-framebuffer.js";
export { StderrLogger, MemoryLogger, type Logger } from "./logger.js";
export { Tokens } from "./tokens.js";

// The plugin contract.
export {
  definePlugin,
  registerDeviceType,
  assertPlugin,
  deviceTypeSupports,
  GUEST_ARCHITECTURES,
  PLUGIN_API_VERSION,
  type DeviceContext,
  type DeviceType,
  type GuestArchitecture,
  type VmmPlugin,
} from "./plugin/contract.js";
export { registerQuirk, type DeviceQuirk, type QuirkMatch, type QuirkDevice, type QuirkDeviceAccess, type QuirkMsixTable, type QuirkTarget, type QuirkWindow, type AppliedQuirk } from "./plugin/quirks.js";
export { parseSize, validateOptions, type StringOption, type NumberOption, type BooleanOption, type EnumOption, type SizeOption, type OptionSpec, type OptionSchema, type OptionValues, type OptionSource } from "./plugin/options.js";
