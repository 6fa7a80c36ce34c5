// The public API of @vmm/machine: an explicit list (documented in README.md): the machine, what it reports, and
// the types of its public members. Loaders, table builders and device internals are not API; api-report.md
// records this surface and CI fails when it changes without a changeset.

// The machine and its run.
export { Machine, type MachineOptions, type KernelKind } from "./machine.js";
export type { MachineResult, StopReason } from "./run-loop.js";
export { PauseGate } from "./pause-gate.js";
export { LoopControl } from "./loop-control.js";
export type { VcpuState } from "./vcpu-state.js";

// Snapshots (`Machine.saveSnapshot`, `Machine.restoreSnapshot`).
export { loadSnapshot, type LoadedSnapshot, type SnapshotSummary, type RestoreMemory } from "./snapshot/x86-machine.js";
export { SNAPSHOT_FORMAT, SNAPSHOT_FORMAT_VERSION, MANIFEST_FILE, MEMORY_FILE, type SnapshotManifest } from "./snapshot/manifest.js";
export type { MemoryImageRegion } from "./snapshot/memory-image.js";
export type { LoadedImage } from "./loaders/image.js";
export type { PlatformDescription } from "./firmware/index.js";
export { FirmwareBoot } from "./firmware-boot.js";
export { FIRMWARE_MAX } from "./loaders/firmware.js";

// The memory map.
export { buildMemoryMap, Layout, E820Type, type E820Entry, type RamBlock, type MemoryMap, type MemoryMapOptions } from "./x86_64/memory-map.js";

// Platform devices (`machine.legacy`, `machine.resetControl`) and their ports.
export { Uart16550, COM1, type UartOptions } from "./devices/uart16550.js";
// Serial output a line per write (also the arm64 machine's console).
export { LineBuffer } from "./devices/line-buffer.js";
export { consoleOutput, feedConsoleInput, type ConsoleStreams } from "./devices/console.js";
export { I8042 } from "./devices/i8042.js";
export { CmosRtc } from "./devices/cmos-rtc.js";
export { DebugExit, PostCodePort, DEBUG_EXIT_PORT } from "./devices/debug-exit.js";
export { PmTimer, PM_TIMER_PORT } from "./devices/pm-timer.js";
export { AcpiPm, ACPI_PM_PORTS, SCI_IRQ, SLEEP_TYPE_S5 } from "./devices/acpi-pm.js";
export type { LegacyDevices } from "./devices/legacy.js";
export { ResetControl, RESET_CONTROL_PORT, type ResetKind } from "./devices/reset-control.js";
export { DEBUGCON_PORT } from "./devices/debugcon.js";
export { FW_CFG_PORTS } from "./devices/fw-cfg/index.js";

// Display-facing services (`machine.keyboard`, `machine.bootFramebuffer`; also under core's Tokens).
export { KeysymKeyboard } from "./devices/keyboard.js";
export { KEYS, scancodes, type KeyName, type ScancodeSet } from "./devices/scancodes.js";
export { keyForKeysym } from "./devices/keysyms.js";
export { BootFramebufferSlot } from "./devices/boot-framebuffer.js";

// KVM-backed services (`machine.interrupts`, `ioEvents`, `msiRoutes`, `pci`).
export { KvmInterruptController, IOAPIC_PINS } from "./services/interrupts.js";
export { KvmMemoryMapper } from "./services/memory-mapper.js";
export { KvmIoEvents } from "./services/io-events.js";
export { MsiRouter, X86_GSI_ROUTING, type MsiRoute, type MsiRouteAllocator, type GsiRoutingTable } from "./services/msi-routes.js";
export { KvmMsiVectors, KvmMsiVectorSet } from "./services/msi-vectors.js";
export { PCI_INTX_GSIS, type PciHost } from "./services/pci.js";
