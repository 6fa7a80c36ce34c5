import type { AddressSpace } from "./address-space.js";

/** Where an ioevent listens: a port or MMIO address, an access width (0 = any), optionally one value. */
export interface IoEventRequest {
  readonly space: "pio" | "mmio";
  readonly address: number;
  readonly size: 0 | 1 | 2 | 4 | 8;
  readonly datamatch?: number;
}

export interface Handle {
  /** Undo the registration; calling it twice is harmless. */
  remove(): void;
}

/**
 * Guest writes that signal the VMM without a userspace exit (KVM ioeventfd). A device must also handle the same
 * write when it reaches its BAR handler: implementations without a fast path simply let writes trap.
 */
export interface IoEventRegistry {
  add(request: IoEventRequest, notify: () => void): Handle;
}

/** Maps host memory into the guest-physical address space (a KVM memslot), for RAM-backed BARs. */
export interface MemoryMapper {
  /** Page-aligned memory the mapper can place in the guest. */
  allocate(size: number): Uint8Array;
  map(gpa: number, bytes: Uint8Array, options?: { readonly?: boolean; dirtyLog?: boolean }): MappedRegion;
}

export interface MappedRegion extends Handle {
  readonly gpa: number;
  readonly size: number;
  /** Pages written since the last call (one bit per 4 KiB page), when dirty logging was asked for. */
  dirtyPages?(): Uint8Array;
}

/** Lets writes trap: the device's BAR handler sees every write. Used by tests and hosts without ioeventfd. */
export class TrappingIoEvents implements IoEventRegistry {
  add(): Handle {
    return { remove() {} };
  }
}

/** RAM-backed mappings without KVM: accesses to the window go through the MMIO space to the bytes. */
export class MmioBackedMemoryMapper implements MemoryMapper {
  constructor(private readonly mmio: AddressSpace) {}

  allocate(size: number): Uint8Array {
    return new Uint8Array(size);
  }

  map(gpa: number, bytes: Uint8Array, options: { readonly?: boolean } = {}): MappedRegion {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const get = [0, (o: number) => view.getUint8(o), (o: number) => view.getUint16(o, true), 0, (o: number) => view.getUint32(o, true)] as const;
    const reg = this.mmio.register(gpa, bytes.length, "ram-mapping", {
      read: (off, size) => (get[size] as (o: number) => number)(off),
      write: (off, size, value) => {
        if (options.readonly) return;
        if (size === 1) view.setUint8(off, value);
        else if (size === 2) view.setUint16(off, value, true);
        else view.setUint32(off, value, true);
      },
    });
    return { gpa, size: bytes.length, remove: () => reg.unregister() };
  }
}
