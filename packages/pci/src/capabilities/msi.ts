import { ConfigurationError, type MsiMessage, type MsiVectorSet, type PciCapability, type SmallAccessSize } from "@vmm/core";
import { readLe, writeLe } from "../config/masked-bytes.js";

export const MSI_CAPABILITY_ID = 0x05;

const CTRL_ENABLE = 1 << 0;
const CTRL_64BIT = 1 << 7;
const CTRL_PER_VECTOR_MASK = 1 << 8;

export interface MsiOptions {
  /** Vectors the function can request: 1, 2, 4, 8, 16 or 32. */
  vectors?: number;
  /** 64-bit message address (default true). */
  address64?: boolean;
  /** Per-vector masking with mask and pending registers (default false). */
  perVectorMask?: boolean;
}

/**
 * The MSI capability (ID 0x05). Body offsets are relative to the byte after the header: control at 0, address
 * at 2, then (64-bit) upper address at 6 and data at 10, or (32-bit) data at 6; mask and pending follow the data.
 * `notify(vector)` sends the message, or holds it pending while the vector is masked or Bus Master Enable is clear
 * and sends it once neither holds it back. Each vector is delivered through an `MsiVector` allocated at attach,
 * kept programmed with its message while it is deliverable (enabled, allocated, unmasked, Bus Master Enable set)
 * and with undefined otherwise; multi-message vectors get the data with their number in the low bits.
 */
export class MsiCapability implements PciCapability {
  readonly id = MSI_CAPABILITY_ID;
  readonly body: Uint8Array;
  readonly writable: Uint8Array;
  readonly vectors: number;
  private vectorSet: MsiVectorSet | undefined;
  private readonly dataAt: number;
  private readonly maskAt: number | undefined;
  /** Messages dropped because MSI was disabled or the vector was not allocated. */
  dropped = 0;
  private busMasterOn = true;
  /** Pending vectors of a capability without per-vector masking (held while Bus Master Enable is clear). */
  private held = 0;

  constructor(options: MsiOptions = {}) {
    const vectors = options.vectors ?? 1;
    if (![1, 2, 4, 8, 16, 32].includes(vectors)) {
      throw new ConfigurationError(`MSI: vector count ${vectors} must be 1, 2, 4, 8, 16 or 32`);
    }
    this.vectors = vectors;
    const is64 = options.address64 ?? true;
    const masking = options.perVectorMask ?? false;
    this.dataAt = is64 ? 10 : 6;
    this.maskAt = masking ? this.dataAt + 4 : undefined;
    const length = this.dataAt + 2 + (masking ? 10 : 0);
    this.body = new Uint8Array(length);
    this.writable = new Uint8Array(length);
    const mmc = Math.log2(vectors);
    writeLe(this.body, 0, 2, (mmc << 1) | (is64 ? CTRL_64BIT : 0) | (masking ? CTRL_PER_VECTOR_MASK : 0));
    writeLe(this.writable, 0, 2, CTRL_ENABLE | (0x7 << 4));
    writeLe(this.writable, 2, 4, 0xffff_fffc);
    if (is64) writeLe(this.writable, 6, 4, 0xffff_ffff);
    writeLe(this.writable, this.dataAt, 2, 0xffff);
    if (this.maskAt !== undefined) writeLe(this.writable, this.maskAt, 4, vectors === 32 ? 0xffff_ffff : (1 << vectors) - 1);
  }

  /** @internal Called by the function when it is attached: the vectors this capability delivers through. */
  connect(vectors: MsiVectorSet): void {
    this.vectorSet = vectors;
    this.program();
  }

  get enabled(): boolean {
    return (this.control & CTRL_ENABLE) !== 0;
  }

  /** Vectors the guest allocated (multiple message enable), never more than offered. */
  get enabledVectors(): number {
    return Math.min(this.vectors, 1 << ((this.control >> 4) & 0x7));
  }

  get address(): number {
    const low = readLe(this.body, 2, 4);
    return this.dataAt === 10 ? readLe(this.body, 6, 4) * 2 ** 32 + low : low;
  }

  get data(): number {
    return readLe(this.body, this.dataAt, 2);
  }

  masked(vector: number): boolean {
    return this.maskAt !== undefined && ((readLe(this.body, this.maskAt, 4) >>> vector) & 1) === 1;
  }

  /** A message is waiting: the vector was masked, or Bus Master Enable was clear, when it was signalled. */
  pending(vector: number): boolean {
    return ((this.pendingBits >>> vector) & 1) === 1;
  }

  /** Whether the function may send messages (command register Bus Master Enable, as the function reports it). */
  get busMaster(): boolean {
    return this.busMasterOn;
  }

  /** True while `vector` may be sent now: MSI enabled, the vector allocated and unmasked, Bus Master Enable set. */
  deliverable(vector: number): boolean {
    return this.enabled && this.busMasterOn && vector >= 0 && vector < this.enabledVectors && !this.masked(vector);
  }

  /**
   * The eventfd that raises `vector` in the guest with no userspace hop (core `MsiVector.eventFd`), while the
   * vector is deliverable and the platform has one; undefined otherwise (see MsixCapability.vectorEventFd).
   */
  vectorEventFd(vector: number): number | undefined {
    return this.deliverable(vector) ? this.vectorSet?.vector(vector).eventFd : undefined;
  }

  /**
   * Signals `vector`: delivered now, held pending while masked or while Bus Master Enable is clear (MSI is a
   * memory write), or dropped while MSI is off.
   */
  notify(vector: number): void {
    if (!this.enabled || !Number.isInteger(vector) || vector < 0 || vector >= this.enabledVectors) {
      this.dropped++;
      return;
    }
    if (this.masked(vector) || !this.busMasterOn) {
      this.setPending(vector, true);
      return;
    }
    this.deliver(vector);
  }

  /** @internal Bus Master Enable changed (PciFunction calls it); setting it sends what was held. */
  setBusMaster(enabled: boolean): void {
    this.busMasterOn = enabled;
    this.program();
    this.flushPending();
  }

  /** Back to the reset state: disabled, one vector allocated, message, mask and pending cleared. */
  reset(): void {
    const control = this.control & ~(CTRL_ENABLE | (0x7 << 4));
    this.body.fill(0);
    writeLe(this.body, 0, 2, control);
    this.held = 0;
    this.program();
  }

  /**
   * @internal The pending vectors a capability without a pending register keeps privately, for a snapshot (with
   * per-vector masking they are in the body, which config space saves).
   */
  get heldPending(): number {
    return this.maskAt === undefined ? this.held : 0;
  }

  /**
   * @internal After the body was restored in config space: the private pending bits (vectors past the count
   * dropped) and Bus Master Enable; every vector is programmed as the state says (the platform's routes are
   * re-created) and pending messages nothing holds back any more are sent.
   */
  restorePending(held: number, busMaster: boolean): void {
    if (this.maskAt === undefined) this.held = (held & (this.vectors === 32 ? 0xffff_ffff : 2 ** this.vectors - 1)) >>> 0;
    this.busMasterOn = busMaster;
    this.program();
    this.flushPending();
  }

  onWrite(_offset: number, _size: SmallAccessSize, _value: number): void {
    this.program();
    this.flushPending();
  }

  /** The message `vector` sends (the data's low bits carry the vector number when several are allocated). */
  message(vector: number): MsiMessage {
    const count = this.enabledVectors;
    return { address: this.address, data: ((this.data & ~(count - 1)) | vector) & 0xffff };
  }

  private get control(): number {
    return readLe(this.body, 0, 2);
  }

  /** Sends pending messages that nothing holds back any more (enabled, bus master, unmasked). */
  private flushPending(): void {
    if (!this.enabled || !this.busMasterOn || this.pendingBits === 0) return;
    for (let v = 0; v < this.enabledVectors; v++) {
      if (this.pending(v) && !this.masked(v)) {
        this.setPending(v, false);
        this.deliver(v);
      }
    }
  }

  /** The pending register when the capability has one, else the private bits. */
  private get pendingBits(): number {
    return this.maskAt === undefined ? this.held : readLe(this.body, this.maskAt + 4, 4);
  }

  private deliver(vector: number): void {
    this.vectorSet?.vector(vector).trigger();
  }

  /** Brings every vector's programmed message in line with the registers, as one platform update. */
  private program(): void {
    const set = this.vectorSet;
    if (!set) return;
    set.batch(() => {
      for (let v = 0; v < this.vectors; v++) {
        const deliverable = this.enabled && this.busMasterOn && v < this.enabledVectors && !this.masked(v);
        set.vector(v).program(deliverable ? this.message(v) : undefined);
      }
    });
  }

  private setPending(vector: number, on: boolean): void {
    const bit = 2 ** vector; // not 1 << vector: bit 31 would make it negative
    const bits = this.pendingBits;
    const next = (on ? bits | bit : bits & ~bit) >>> 0;
    if (this.maskAt === undefined) this.held = next;
    else writeLe(this.body, this.maskAt + 4, 4, next);
  }
}
