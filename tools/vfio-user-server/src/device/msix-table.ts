import type { RegisterWidth } from "@vmm/core";
import type { RegionWindow } from "./region.js";

export const MSIX_ENTRY_SIZE = 16;
const VECTOR_CONTROL = 12;
const VECTOR_MASKED = 1;

/** The message a host kernel programs for vector N when the VMM gives the vector an eventfd. */
export const HOST_MSI_ADDRESS = 0xfee00000;
export const HOST_MSI_DATA_BASE = 0x4000;

/** A vector the device sent with a message the host never programmed: on hardware the interrupt goes astray. */
export interface LostVector {
  readonly vector: number;
  readonly address: bigint;
  readonly data: number;
}

/**
 * The device's own MSI-X table and pending bits, as the function holds them: entries of message address (low,
 * high), data and vector control (bit 0 masks). Entries start masked after reset, as the specification requires.
 * The host programs them: when the client gives vector N an eventfd (SET_IRQS), the server writes entry N as a host
 * kernel writes the real table (address HOST_MSI_ADDRESS, data HOST_MSI_DATA_BASE + N, unmasked), and masks it
 * again when the eventfd is taken away. A vector raised while masked (its entry, or the whole function) becomes
 * pending and is sent when unmasked. Sending it signals the eventfd only while the entry still holds the host's
 * message: a message written behind the host's back (the rtl8168 back door, a BAR write) sends the interrupt
 * nowhere, as on hardware, and `lost` hears of it.
 */
export class MsixTable {
  private readonly entries: Uint8Array;
  private readonly pending: boolean[];
  /** Interrupts sent with a message the host did not program. */
  lostCount = 0;

  constructor(
    readonly vectors: number,
    private readonly deliver: (vector: number) => void,
    private readonly functionMasked: () => boolean,
    private readonly lost: (vector: LostVector) => void = () => undefined,
  ) {
    this.entries = new Uint8Array(vectors * MSIX_ENTRY_SIZE);
    this.pending = new Array<boolean>(vectors).fill(false);
    this.reset();
  }

  /** The host kernel programs and unmasks entry `vector` (the client gave it an eventfd); a pending vector goes out. */
  hostProgram(vector: number): void {
    if (!this.inTable(vector)) return;
    const at = vector * MSIX_ENTRY_SIZE;
    this.store(at, HOST_MSI_ADDRESS);
    this.store(at + 4, 0);
    this.store(at + 8, HOST_MSI_DATA_BASE + vector);
    this.writeDword(at + VECTOR_CONTROL, 0);
  }

  /** The host masks entry `vector` (its eventfd was taken away). */
  hostRelease(vector: number): void {
    if (this.inTable(vector)) this.store(vector * MSIX_ENTRY_SIZE + VECTOR_CONTROL, VECTOR_MASKED);
  }

  /** Whether entry `vector` holds the message the host programmed for it. */
  holdsHostMessage(vector: number): boolean {
    const at = vector * MSIX_ENTRY_SIZE;
    return this.readDword(at) === HOST_MSI_ADDRESS && this.readDword(at + 4) === 0 && this.readDword(at + 8) === HOST_MSI_DATA_BASE + vector;
  }

  get tableSize(): number {
    return this.entries.length;
  }

  get pbaSize(): number {
    return Math.ceil(this.vectors / 64) * 8;
  }

  /** Every entry masked with a zero message, nothing pending. */
  reset(): void {
    this.entries.fill(0);
    this.pending.fill(false);
    for (let v = 0; v < this.vectors; v++) this.store(v * MSIX_ENTRY_SIZE + VECTOR_CONTROL, VECTOR_MASKED);
  }

  isMasked(vector: number): boolean {
    return (this.readDword(vector * MSIX_ENTRY_SIZE + VECTOR_CONTROL) & VECTOR_MASKED) !== 0;
  }

  isPending(vector: number): boolean {
    return this.pending[vector] ?? false;
  }

  /** The device raises `vector`: sent now, or left pending while masked. Vectors past the table are dropped. */
  raise(vector: number): void {
    if (!this.inTable(vector)) return;
    if (this.functionMasked() || this.isMasked(vector)) this.pending[vector] = true;
    else this.send(vector);
  }

  /** Delivers every pending vector that is no longer masked (after an entry or the function was unmasked). */
  deliverPending(): void {
    if (this.functionMasked()) return;
    for (let v = 0; v < this.vectors; v++) {
      if (this.pending[v] && !this.isMasked(v)) {
        this.pending[v] = false;
        this.send(v);
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
    this.store(at, at % MSIX_ENTRY_SIZE === VECTOR_CONTROL ? value & VECTOR_MASKED : value);
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

  /** The message goes out: to the vector's eventfd when it is the host's, astray otherwise. */
  private send(vector: number): void {
    if (this.holdsHostMessage(vector)) return this.deliver(vector);
    this.lostCount++;
    const at = vector * MSIX_ENTRY_SIZE;
    this.lost({ vector, address: (BigInt(this.readDword(at + 4)) << 32n) | BigInt(this.readDword(at)), data: this.readDword(at + 8) });
  }

  private inTable(vector: number): boolean {
    return Number.isInteger(vector) && vector >= 0 && vector < this.vectors;
  }

  private store(at: number, value: number): void {
    for (let i = 0; i < 4; i++) this.entries[at + i] = (value >>> (8 * i)) & 0xff;
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
