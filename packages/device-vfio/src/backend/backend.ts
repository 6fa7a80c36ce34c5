// The one interface the VFIO device model drives, implemented by kernel VFIO (a /dev/vfio device fd) and by the
// vfio-user client (a UNIX socket to a device process). Both speak linux/vfio.h's structures, so the shapes here
// are those structures decoded. Every call is synchronous: the device model answers guest config and BAR
// accesses from inside a vCPU exit.

/** linux/vfio.h VFIO_PCI_*_REGION_INDEX. */
export const VfioRegion = { BAR0: 0, BAR1: 1, BAR2: 2, BAR3: 3, BAR4: 4, BAR5: 5, ROM: 6, CONFIG: 7, VGA: 8 } as const;

/** linux/vfio.h VFIO_PCI_*_IRQ_INDEX. */
export const VfioIrq = { INTX: 0, MSI: 1, MSIX: 2, ERR: 3, REQ: 4 } as const;

/** linux/vfio.h VFIO_DEVICE_FLAGS_*. */
export const VfioDeviceFlags = { RESET: 1 << 0, PCI: 1 << 1 } as const;

/** linux/vfio.h VFIO_REGION_INFO_FLAG_*. */
export const VfioRegionFlags = { READ: 1 << 0, WRITE: 1 << 1, MMAP: 1 << 2, CAPS: 1 << 3 } as const;

/** linux/vfio.h VFIO_IRQ_INFO_*. */
export const VfioIrqInfoFlags = { EVENTFD: 1 << 0, MASKABLE: 1 << 1, AUTOMASKED: 1 << 2, NORESIZE: 1 << 3 } as const;

export interface VfioDeviceInfo {
  /** VfioDeviceFlags bits. */
  readonly flags: number;
  readonly numRegions: number;
  readonly numIrqs: number;
}

/** A part of a region that may be mapped (VFIO_REGION_INFO_CAP_SPARSE_MMAP), offsets relative to the region. */
export interface VfioMmapArea {
  readonly offset: number;
  readonly size: number;
}

export interface VfioRegionInfo {
  readonly index: number;
  /** VfioRegionFlags bits. */
  readonly flags: number;
  /** Bytes; 0 for a region the device does not implement. */
  readonly size: number;
  /**
   * Present when the region (or parts of it) can be mapped: map `fd` at `offset` + area.offset for each area.
   * `areas` is the sparse mmap capability's list when the region has one, else one area covering the region.
   * The backend owns `fd` (kernel VFIO: the device fd; vfio-user: the fd the server sent) and closes it in close().
   */
  readonly mmap?: { readonly fd: number; readonly offset: number; readonly areas: readonly VfioMmapArea[] };
  /** VFIO_REGION_INFO_CAP_TYPE, when present. */
  readonly type?: { readonly type: number; readonly subtype: number };
}

export interface VfioIrqInfo {
  readonly index: number;
  /** VfioIrqInfoFlags bits. */
  readonly flags: number;
  /** Interrupts of this index the device has (0: none). */
  readonly count: number;
}

/**
 * VFIO_DEVICE_SET_IRQS, decoded. `fds`: one entry per interrupt from `start` on, an eventfd or -1 (unassign that
 * one); an empty `fds` with action "trigger" and count 0 disables the whole index (DATA_NONE, count 0).
 * "unmask" with one fd: the eventfd whose signal unmasks (INTx resample); "mask"/"unmask" without fds act now.
 */
export type VfioIrqSet =
  | { readonly action: "trigger"; readonly index: number; readonly start: number; readonly fds: readonly number[] }
  | { readonly action: "trigger-disable"; readonly index: number }
  | { readonly action: "mask" | "unmask"; readonly index: number; readonly start: number; readonly count: number }
  | { readonly action: "unmask-fd"; readonly index: number; readonly fd: number };

/** A range of guest memory the device may reach by DMA (VFIO_IOMMU_MAP_DMA / VFIO_USER_DMA_MAP). */
export interface VfioDmaRegion {
  /** The I/O virtual address the device uses: the guest-physical address (no vIOMMU). */
  readonly iova: number;
  readonly size: number;
  /** The memfd behind it and where in that file the range starts; -1 when there is no file (DMA by messages). */
  readonly fd: number;
  readonly fileOffset: number;
  /** The range in this process (kernel VFIO maps by virtual address; vfio-user serves DMA_READ/WRITE from it). */
  readonly bytes: Uint8Array;
  readonly readable: boolean;
  readonly writable: boolean;
}

/** A range the device cannot reach or that the host reserves (IOMMU reserved regions, the server's DMA limits). */
export interface VfioReservedRange {
  readonly start: number;
  /** Inclusive. */
  readonly end: number;
  /** e.g. "msi", "reserved", "direct" (sysfs reserved_regions types) or "outside the server's IOVA range". */
  readonly type: string;
}

/** Raised when the backend cannot go on (the device process died, the device fd failed). */
export class VfioBackendLostError extends Error {
  override readonly name = "VfioBackendLostError";
}

export interface VfioBackend {
  /** Names the device in errors: "vfio-user /run/gpu.sock", "vfio 0000:01:00.0". */
  readonly name: string;
  deviceInfo(): VfioDeviceInfo;
  regionInfo(index: number): VfioRegionInfo;
  irqInfo(index: number): VfioIrqInfo;
  /** Reads `size` bytes of region `index` at `offset` (split and reassembled as the backend must). */
  read(index: number, offset: number, size: number): Uint8Array;
  write(index: number, offset: number, data: Uint8Array): void;
  setIrqs(request: VfioIrqSet): void;
  /** VFIO_DEVICE_RESET; false when the device cannot be reset (flags lack RESET). */
  reset(): boolean;
  dmaMap(region: VfioDmaRegion): void;
  dmaUnmap(iova: number, size: number): void;
  /** Ranges the guest's memory must not overlap (checked at attach). */
  reservedRanges(): readonly VfioReservedRange[];
  /** Called once when the backend is lost for good (a dead server, EOF); the VMM stops the VM with `reason`. */
  onLost(callback: (reason: string) => void): void;
  close(): void;
}
