import type { IoHandler, SmallAccessSize } from "./address-space.js";
import type { InterruptLine } from "./interrupts.js";
import type { MsiVectorFactory } from "./msi-vectors.js";
import type { AppliedQuirk } from "./plugin/quirks.js";
import type { DeviceState } from "./snapshot.js";

/** segment:bus:device.function */
export interface PciAddress {
  readonly segment: number;
  readonly bus: number;
  readonly device: number;
  readonly function: number;
}

export type BarKind = "io" | "mem32" | "mem64";

/** What a device declares about one BAR. Sizes are powers of two (I/O at least 4, memory at least 16 bytes). */
export interface PciBarDescriptor {
  readonly index: number;
  readonly kind: BarKind;
  readonly size: number;
  readonly prefetchable?: boolean;
}

/** A decoded, enabled BAR window as the bus computed it from config space. */
export interface PciBarWindow {
  readonly index: number;
  readonly kind: BarKind;
  readonly address: number;
  readonly size: number;
}

/** What the bus hands a function when it is placed on the bus. */
export interface PciAttachContext {
  readonly address: PciAddress;
  /** The function's INTx line (the pin it reports in config space). */
  readonly intx: InterruptLine;
  /**
   * Where the function's MSI and MSI-X capabilities allocate their vectors, once, at attach. The bus tracks what
   * is created here and closes it when the function is detached.
   */
  readonly msiVectors: MsiVectorFactory;
  /**
   * The PCI Express role the bus placed the function in: "endpoint" below a root port, "rc-integrated" (a
   * root-complex integrated endpoint) on the root bus. Absent: conventional PCI, and the function stays what it
   * was built as. A function that can be either (a PciFunction) takes the matching PCI Express capability and a
   * 4 KiB config space when this is set; `express` must read true afterwards.
   */
  readonly express?: "endpoint" | "rc-integrated";
}

/**
 * One PCI function as the bus sees it. The bus guarantees config accesses of 1, 2 or 4 bytes, naturally aligned
 * within a dword, at offsets below 4096 (256 for a conventional function). The bus, not the function, computes
 * which BAR windows are decoded: after every config write it reads the command register and BARs back and diffs.
 */
export interface PciDevice {
  /** Human-readable instance name, used in errors and traces. */
  readonly name: string;
  /** The BARs this function implements; absent BARs read as 0 and ignore writes. */
  readonly bars: readonly PciBarDescriptor[];
  /** An expansion ROM, if any: its size (power of two, at least 2 KiB) and contents. */
  readonly rom?: { readonly size: number; readonly bytes: Uint8Array };
  /** True for PCI Express functions (4 KiB config space). */
  readonly express?: boolean;

  configRead(offset: number, size: SmallAccessSize): number;
  configWrite(offset: number, size: SmallAccessSize, value: number): void;

  /**
   * The one BAR-relative handler the bus registers for a trapped BAR while its window is decoded: everything the
   * function answers in that BAR (for a PciFunction, its own registers with quirk windows and the MSI-X table and
   * PBA layered on top). Returning undefined means the function maps the window itself in `barActivated`
   * (RAM-backed BARs, passthrough).
   */
  barHandler?(index: number): IoHandler | undefined;
  /** The window is now decoded at `window.address`. Called after the bus registered the handler. */
  barActivated?(window: PciBarWindow): void;
  /** The window stops being decoded. Called before the bus unregisters the handler. */
  barDeactivated?(window: PciBarWindow): void;

  attach?(context: PciAttachContext): void;
  /**
   * The device's counters now (accesses it trapped, interrupts it delivered through this process, errors), named
   * in lowerCamelCase; `vmm run --stats` prints them when the VM stops. Read-only snapshot.
   */
  counters?(): Readonly<Record<string, number>>;
  /** The plugin quirks applied to this device (passthrough devices), for `vmm devices`. */
  quirks?(): readonly AppliedQuirk[];
  /** Function-level reset (also used on machine reset). */
  reset?(): void;

  /**
   * Snapshots (see Snapshottable): a device without `saveState` makes `vmm snapshot` refuse, naming it. A
   * PciFunction saves its config space, BAR-independent capability state (MSI, MSI-X table and PBA) and INTx level
   * itself; subclasses add their own state.
   */
  saveState?(): DeviceState;
  restoreState?(state: DeviceState): void;
  quiesce?(): Promise<void>;
}

/** A standard capability as an object: the bus chains it and owns the ID and next-pointer bytes. */
export interface PciCapability {
  readonly id: number;
  /** Body bytes after the 2-byte header (ID, next). */
  readonly body: Uint8Array;
  /** Per-bit writable mask over `body`; absent means read-only. */
  readonly writable?: Uint8Array;
  /** Per-bit write-1-to-clear mask over `body`. */
  readonly writeOneToClear?: Uint8Array;
  /** Called after a write changed the body (offset is body-relative). */
  onWrite?(offset: number, size: SmallAccessSize, value: number): void;
  /** Computes live bytes of the body before a read (offset is body-relative). */
  onRead?(offset: number, size: SmallAccessSize): void;
}

/** An extended capability (PCIe, at 0x100 and up): the bus owns the 4-byte header. */
export interface PciExtendedCapability {
  readonly id: number;
  readonly version: number;
  readonly body: Uint8Array;
  readonly writable?: Uint8Array;
  readonly writeOneToClear?: Uint8Array;
  onWrite?(offset: number, size: SmallAccessSize, value: number): void;
  onRead?(offset: number, size: SmallAccessSize): void;
}
