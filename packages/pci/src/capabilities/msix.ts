import {
  ConfigurationError,
  type IoHandler,
  type MsiMessage,
  type MsiVectorSet,
  type PciCapability,
  type SmallAccessSize,
} from "@vmm/core";
import { readLe, writeLe } from "../config/masked-bytes.js";

export const MSIX_CAPABILITY_ID = 0x11;
export const MSIX_ENTRY_SIZE = 16;

const CTRL_FUNCTION_MASK = 1 << 14;
const CTRL_ENABLE = 1 << 15;
const ENTRY_VECTOR_CONTROL = 12;

export interface MsixOptions {
  /** Table size: 1 to 2048 vectors. */
  vectors: number;
  /** BAR holding the table, and the table's offset in it (8-byte aligned; default 0). */
  tableBar: number;
  tableOffset?: number;
  /** BAR holding the pending-bit array (default: the table's BAR) and its offset (default: right after the table). */
  pbaBar?: number;
  pbaOffset?: number;
}

/** Why a vector changed, for listeners that watch the table (`subscribe`). */
export type MsixChange = { vector: number } | { vector: "all" };

/**
 * The MSI-X capability (ID 0x11) with its table and pending-bit array. Vectors start masked, as the
 * specification requires; an event on a masked vector (or while the function mask is set, or Bus Master Enable
 * is clear) sets its pending bit, and the message is sent as soon as nothing holds it back. Route BAR accesses to `tableHandler` and
 * `pbaHandler` (PciFunction does it for you). Each vector is delivered through an `MsiVector` allocated at attach,
 * programmed with its entry's message while it is deliverable (enabled, function and vector unmasked, Bus Master
 * Enable set) and with undefined otherwise; each config or table write updates them as one batch.
 */
export class MsixCapability implements PciCapability {
  readonly id = MSIX_CAPABILITY_ID;
  readonly body = new Uint8Array(10);
  readonly writable = new Uint8Array(10);
  readonly vectors: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly tableSize: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
  readonly pbaSize: number;
  readonly tableHandler: IoHandler;
  readonly pbaHandler: IoHandler;
  /** Events dropped because MSI-X was disabled. */
  dropped = 0;
  private readonly table: Uint8Array;
  private readonly pba: Uint8Array;
  private vectorSet: MsiVectorSet | undefined;
  private busMasterOn = true;
  private readonly listeners: Array<(change: MsixChange) => void> = [];

  constructor(options: MsixOptions) {
    const { vectors, tableBar } = options;
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > 2048) {
      throw new ConfigurationError(`MSI-X: vector count ${vectors} must be between 1 and 2048`);
    }
    this.vectors = vectors;
    this.tableBar = tableBar;
    this.tableOffset = options.tableOffset ?? 0;
    this.tableSize = vectors * MSIX_ENTRY_SIZE;
    this.pbaBar = options.pbaBar ?? tableBar;
    this.pbaSize = Math.ceil(vectors / 64) * 8;
    this.pbaOffset =
      options.pbaOffset ?? (this.pbaBar === tableBar ? this.tableOffset + this.tableSize : 0);
    for (const [name, bar, off] of [
      ["table", this.tableBar, this.tableOffset],
      ["PBA", this.pbaBar, this.pbaOffset],
    ] as const) {
      if (!Number.isInteger(bar) || bar < 0 || bar > 5) throw new ConfigurationError(`MSI-X: ${name} BAR ${bar} is not 0-5`);
      if (!Number.isInteger(off) || off < 0 || off % 8 !== 0 || off >= 2 ** 32) {
        throw new ConfigurationError(`MSI-X: ${name} offset 0x${off.toString(16)} must be 8-byte aligned`);
      }
    }
    if (
      this.tableBar === this.pbaBar &&
      this.pbaOffset < this.tableOffset + this.tableSize &&
      this.tableOffset < this.pbaOffset + this.pbaSize
    ) {
      throw new ConfigurationError("MSI-X: the table and the PBA overlap");
    }
    this.table = new Uint8Array(this.tableSize);
    this.pba = new Uint8Array(this.pbaSize);
    writeLe(this.body, 0, 2, vectors - 1);
    writeLe(this.writable, 0, 2, CTRL_FUNCTION_MASK | CTRL_ENABLE);
    writeLe(this.body, 2, 4, (this.tableOffset | this.tableBar) >>> 0);
    writeLe(this.body, 6, 4, (this.pbaOffset | this.pbaBar) >>> 0);
    this.resetTable();
    // Bytes outside the table or PBA read 0 and ignore writes, so an access may straddle their ends.
    this.tableHandler = {
      read: (o, s) => readLe(this.table, o, s),
      write: (o, s, v) => this.tableWrite(o, [v >>> 0], s),
      read64: (o) => BigInt(readLe(this.table, o, 4)) | (BigInt(readLe(this.table, o + 4, 4)) << 32n),
      write64: (o, v) => this.tableWrite(o, [Number(v & 0xffff_ffffn), Number((v >> 32n) & 0xffff_ffffn)], 8),
    };
    this.pbaHandler = {
      read: (o, s) => readLe(this.pba, o, s),
      write: () => {},
      read64: (o) => BigInt(readLe(this.pba, o, 4)) | (BigInt(readLe(this.pba, o + 4, 4)) << 32n),
      write64: () => {},
    };
  }

  /** @internal Called by the function when it is attached: the vectors this capability delivers through. */
  connect(vectors: MsiVectorSet): void {
    this.vectorSet = vectors;
    this.program();
  }

  /** Called with each change of the enable/mask state or of a table entry. */
  subscribe(listener: (change: MsixChange) => void): void {
    this.listeners.push(listener);
  }

  get enabled(): boolean {
    return (this.control & CTRL_ENABLE) !== 0;
  }

  get functionMasked(): boolean {
    return (this.control & CTRL_FUNCTION_MASK) !== 0;
  }

  masked(vector: number): boolean {
    return (this.table[vector * MSIX_ENTRY_SIZE + ENTRY_VECTOR_CONTROL]! & 1) === 1;
  }

  pending(vector: number): boolean {
    return ((this.pba[vector >> 3]! >> (vector & 7)) & 1) === 1;
  }

  /** The message of a vector as the table holds it now. */
  message(vector: number): MsiMessage {
    const at = vector * MSIX_ENTRY_SIZE;
    return { address: readLe(this.table, at + 4, 4) * 2 ** 32 + readLe(this.table, at, 4), data: readLe(this.table, at + 8, 4) };
  }

  /** Whether the function may send messages (command register Bus Master Enable, as the function reports it). */
  get busMaster(): boolean {
    return this.busMasterOn;
  }

  /** True while `vector` may be sent now: MSI-X enabled, neither the function nor the vector masked, Bus Master Enable set. */
  deliverable(vector: number): boolean {
    return this.enabled && !this.functionMasked && this.busMasterOn && vector >= 0 && vector < this.vectors && !this.masked(vector);
  }

  /**
   * The eventfd that raises `vector` in the guest with no userspace hop (core `MsiVector.eventFd`), while the
   * vector is deliverable and the platform has one; undefined otherwise. A passthrough or vhost backend hands it
   * to the device and switches back to its own eventfd when this turns undefined (watch `subscribe`).
   */
  vectorEventFd(vector: number): number | undefined {
    return this.deliverable(vector) ? this.vectorSet?.vector(vector).eventFd : undefined;
  }

  /**
   * Signals `vector`: delivered now; pending (PBA bit set) while the vector or function is masked or Bus Master
   * Enable is clear (MSI-X is a memory write); dropped (and counted) while MSI-X is disabled.
   */
  notify(vector: number): void {
    if (!this.enabled || !Number.isInteger(vector) || vector < 0 || vector >= this.vectors) {
      this.dropped++;
      return;
    }
    if (this.functionMasked || this.masked(vector) || !this.busMasterOn) {
      this.setPending(vector, true);
      return;
    }
    this.vectorSet?.vector(vector).trigger();
  }

  /**
   * @internal Bus Master Enable changed (PciFunction calls it). Setting it sends the pending messages of unmasked
   * vectors; subscribers hear `{ vector: "all" }`.
   */
  setBusMaster(enabled: boolean): void {
    if (enabled === this.busMasterOn) return;
    this.busMasterOn = enabled;
    this.program();
    this.flushPending();
    this.emit({ vector: "all" });
  }

  /** Back to the reset state: disabled, every vector masked, nothing pending. */
  reset(): void {
    writeLe(this.body, 0, 2, this.vectors - 1);
    this.resetTable();
    this.program();
    this.emit({ vector: "all" });
  }

  /** @internal The table and PBA as they are now, for a snapshot (the control word lives in config space). */
  saveTables(): { readonly table: Uint8Array; readonly pba: Uint8Array } {
    return { table: this.table.slice(), pba: this.pba.slice() };
  }

  /**
   * @internal Restores the table and PBA (sizes `tableSize` and `pbaSize`) after the control word was restored
   * in config space, and with it Bus Master Enable: reserved table bits are cleared as a guest write would, PBA
   * bits past the last vector dropped; then every vector is programmed as the state says (the platform's routes
   * are re-created), pending messages nothing holds back any more are sent, and subscribers hear "all".
   */
  restoreTables(table: Uint8Array, pba: Uint8Array, busMaster: boolean): void {
    if (table.length !== this.tableSize || pba.length !== this.pbaSize) throw new RangeError("MSI-X: restored table or PBA has the wrong size");
    for (let at = 0; at < this.tableSize; at++) {
      const field = at % MSIX_ENTRY_SIZE;
      const byte = table[at]!;
      this.table[at] = field === 0 ? byte & 0xfc : field === ENTRY_VECTOR_CONTROL ? byte & 1 : field > ENTRY_VECTOR_CONTROL ? 0 : byte;
    }
    this.pba.set(pba);
    for (let v = this.vectors; v < this.pbaSize * 8; v++) this.setPending(v, false);
    this.busMasterOn = busMaster;
    this.program();
    this.flushPending();
    this.emit({ vector: "all" });
  }

  onWrite(_offset: number, _size: SmallAccessSize, _value: number): void {
    this.program();
    this.flushPending();
    this.emit({ vector: "all" });
  }

  private get control(): number {
    return readLe(this.body, 0, 2);
  }

  private resetTable(): void {
    this.table.fill(0);
    this.pba.fill(0);
    for (let v = 0; v < this.vectors; v++) this.table[v * MSIX_ENTRY_SIZE + ENTRY_VECTOR_CONTROL] = 1;
  }

  /**
   * A guest write of `size` bytes (1, 2, 4 or 8; `dwords` holds the value, low dword first). It may span two
   * entries: every byte lands, then each entry it touched sends what its unmask released and is reported.
   */
  private tableWrite(offset: number, dwords: number[], size: number): void {
    if (offset < 0) return;
    const end = Math.min(offset + size, this.tableSize);
    for (let at = offset; at < end; at++) {
      const i = at - offset;
      let byte = (dwords[i >> 2]! >>> (8 * (i & 3))) & 0xff;
      const field = at % MSIX_ENTRY_SIZE;
      if (field === 0) byte &= 0xfc; // message address is dword aligned
      if (field === ENTRY_VECTOR_CONTROL) byte &= 1; // only the mask bit is defined
      if (field > ENTRY_VECTOR_CONTROL) byte = 0;
      this.table[at] = byte;
    }
    const first = Math.floor(offset / MSIX_ENTRY_SIZE);
    this.program(first, Math.ceil(end / MSIX_ENTRY_SIZE));
    for (let v = first; v * MSIX_ENTRY_SIZE < end; v++) {
      this.flushPending(v);
      this.emit({ vector: v });
    }
  }

  /** Sends the pending messages that are no longer masked. */
  private flushPending(only?: number): void {
    if (!this.enabled || this.functionMasked || !this.busMasterOn) return;
    const from = only ?? 0;
    const to = only === undefined ? this.vectors : only + 1;
    for (let v = from; v < to; v++) {
      if (this.pending(v) && !this.masked(v)) {
        this.setPending(v, false);
        this.vectorSet?.vector(v).trigger();
      }
    }
  }

  /** Brings the programmed messages of vectors [from, to) in line with the table, as one platform update. */
  private program(from = 0, to = this.vectors): void {
    const set = this.vectorSet;
    if (!set) return;
    const on = this.enabled && !this.functionMasked && this.busMasterOn;
    set.batch(() => {
      for (let v = from; v < Math.min(to, this.vectors); v++) {
        set.vector(v).program(on && !this.masked(v) ? this.message(v) : undefined);
      }
    });
  }

  private setPending(vector: number, on: boolean): void {
    const i = vector >> 3;
    const bit = 1 << (vector & 7);
    this.pba[i] = on ? this.pba[i]! | bit : this.pba[i]! & ~bit;
  }

  private emit(change: MsixChange): void {
    for (const l of this.listeners) l(change);
  }
}
