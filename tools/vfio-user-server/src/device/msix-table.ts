import type { RegisterWidth } from "@vmm/core";
import type { RegionWindow } from "./region.js";

export const MSIX_ENTRY_SIZE = 16;
const VECTOR_CONTROL = 12;
const VECTOR_MASKED = 1;

/**
 * The device's own MSI-X table and pending bits, as the function holds them: entries of message address (low,
 * high), data and vector control (bit 0 masks). A vector raised while masked (its entry, or the whole function)
 * becomes pending and is delivered when unmasked. Entries start unmasked after reset: on a real system the host's
 * kernel programs and unmasks them when the VMM enables the vector, and no host kernel stands between this server
 * and its client, so the VMM emulating the guest's table never has to write this one.
 */
export class MsixTable {
  private readonly entries: Uint8Array;
  private readonly pending: boolean[];

  constructor(
    readonly vectors: number,
    private readonly deliver: (vector: number) => void,
    private readonly functionMasked: () => boolean,
  ) {
    this.entries = new Uint8Array(vectors * MSIX_ENTRY_SIZE);
    this.pending = new Array<boolean>(vectors).fill(false);
  }

  get tableSize(): number {
    return this.entries.length;
  }

  get pbaSize(): number {
    return Math.ceil(this.vectors / 64) * 8;
  }

  reset(): void {
    this.entries.fill(0);
    this.pending.fill(false);
  }

  isMasked(vector: number): boolean {
    return (this.readDword(vector * MSIX_ENTRY_SIZE + VECTOR_CONTROL) & VECTOR_MASKED) !== 0;
  }

  isPending(vector: number): boolean {
    return this.pending[vector] ?? false;
  }

  /** The device raises `vector`: delivered now, or left pending while masked. Vectors past the table are dropped. */
  raise(vector: number): void {
    if (!Number.isInteger(vector) || vector < 0 || vector >= this.vectors) return;
    if (this.functionMasked() || this.isMasked(vector)) this.pending[vector] = true;
    else this.deliver(vector);
  }

  /** Delivers every pending vector that is no longer masked (after an entry or the function was unmasked). */
  deliverPending(): void {
    if (this.functionMasked()) return;
    for (let v = 0; v < this.vectors; v++) {
      if (this.pending[v] && !this.isMasked(v)) {
        this.pending[v] = false;
        this.deliver(v);
      }
    }
  }

  /** The dword at byte `offset` of the table (0 past its end). */
  readDword(offset: number): number {
    const at = offset & ~3;
    if (at < 0 || at + 4 > this.entries.length) return 0;
    return (this.entries[at]! | (this.entries[at + 1]! << 8) | (this.entries[at + 2]! << 16) | (this.entries[at + 3]! << 24)) >>> 0;
  }

  /** Stores the dword at byte `offset` (vector control keeps its reserved bits 0); writes past the end are dropped. */
  writeDword(offset: number, value: number): void {
    const at = offset & ~3;
    if (at < 0 || at + 4 > this.entries.length) return;
    const stored = at % MSIX_ENTRY_SIZE === VECTOR_CONTROL ? value & VECTOR_MASKED : value;
    for (let i = 0; i < 4; i++) this.entries[at + i] = (stored >>> (8 * i)) & 0xff;
    if (at % MSIX_ENTRY_SIZE === VECTOR_CONTROL) this.deliverPending();
  }

  /** The table as a trapped window of a BAR. */
  tableWindow(offset: number): RegionWindow {
    return {
      name: "msi-x table",
      offset,
      size: this.tableSize,
      read: (at, width) => extract(this.readDword(at), at, width),
      write: (at, width, value) => this.writeDword(at, merge(this.readDword(at), at, width, value)),
    };
  }

  /** The pending bit array as a trapped, read-only window. */
  pbaWindow(offset: number): RegionWindow {
    return {
      name: "msi-x pba",
      offset,
      size: this.pbaSize,
      read: (at, width) => extract(this.pbaDword(at & ~3), at, width),
      write: () => undefined,
    };
  }

  private pbaDword(at: number): number {
    let value = 0;
    for (let bit = 0; bit < 32; bit++) if (this.pending[at * 8 + bit]) value |= 1 << bit;
    return value >>> 0;
  }
}

/** The `width` bytes at `at` out of the dword that holds them. */
function extract(dword: number, at: number, width: RegisterWidth): number {
  const shift = 8 * (at & 3);
  return width === 4 ? dword : (dword >>> shift) & (width === 2 ? 0xffff : 0xff);
}

/** `dword` with the `width` bytes at `at` replaced by `value`. */
function merge(dword: number, at: number, width: RegisterWidth, value: number): number {
  if (width === 4) return value;
  const shift = 8 * (at & 3);
  const mask = (width === 2 ? 0xffff : 0xff) << shift;
  return ((dword & ~mask) | ((value << shift) & mask)) >>> 0;
}
