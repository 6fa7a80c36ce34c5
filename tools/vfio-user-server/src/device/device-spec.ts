import type { MsiOptions, MsixOptions, PciExpressOptions } from "../pci/capabilities.js";
import type { BarSpec, PciIdentity } from "../pci/layout.js";
import type { MsixTable } from "./msix-table.js";
import type { MmapArea, RegionWindow } from "./region.js";

/** The capabilities a simulated device may declare, with where they sit. */
export type CapabilityDecl =
  | { readonly kind: "pm"; readonly offset: number; readonly pmc: number; readonly noSoftReset?: boolean }
  | ({ readonly kind: "msi"; readonly offset: number } & MsiOptions)
  | ({ readonly kind: "msix"; readonly offset: number } & MsixOptions)
  | ({ readonly kind: "pcie"; readonly offset: number } & PciExpressOptions)
  | { readonly kind: "vpd"; readonly offset: number; readonly image: Uint8Array };

export type ExtendedCapabilityDecl =
  | { readonly kind: "aer"; readonly offset: number }
  | { readonly kind: "vc"; readonly offset: number }
  | { readonly kind: "dsn"; readonly offset: number; readonly serial: bigint };

/** A trapped window a device adds to one of its BARs, with its own state to reset. */
export interface DeviceWindow extends RegionWindow {
  reset?(): void;
}

/** What a device's own windows may reach: its other regions (an I/O BAR aliasing a memory BAR). */
export interface DeviceInternals {
  regionRead(index: number, offset: number, length: number): Uint8Array;
  regionWrite(index: number, offset: number, data: Uint8Array): void;
  readonly msixTable: MsixTable | undefined;
}

export interface DeviceBar extends BarSpec {
  /** What the client may mmap: the whole BAR, some areas, or (absent) nothing. */
  readonly mmap?: "all" | readonly MmapArea[];
  /** Writes the BAR's contents after reset (they start zeroed). */
  readonly contents?: (bytes: Uint8Array) => void;
  /** Trapped windows with register semantics beyond the engine and the MSI-X structures. */
  readonly windows?: (device: DeviceInternals) => DeviceWindow[];
}

/** A simulated device, declared: identity, BARs, capabilities, where the test engine lives. */
export interface DeviceSpec {
  readonly name: string;
  /** The test engine's ID register. */
  readonly engineId: number;
  readonly identity: PciIdentity;
  /** PCI Express: 4 KiB config space. */
  readonly express: boolean;
  readonly bars: readonly DeviceBar[];
  /** The expansion ROM image (region 6), if any: its length is the ROM BAR's size. */
  readonly rom?: Uint8Array;
  readonly engine: { readonly bar: number; readonly offset: number };
  readonly capabilities: readonly CapabilityDecl[];
  readonly extendedCapabilities: readonly ExtendedCapabilityDecl[];
}
