import { toUnsigned, type SmallAccessSize } from "@vmm/core";
import { MaskedBytes, maskedWrite, readLe } from "./masked-bytes.js";

/**
 * The real device behind a passthrough function's config space (kernel VFIO, a vfio-user server): accesses at
 * config offsets, 1, 2 or 4 bytes inside one dword, as the guest made them.
 */
export interface PhysicalConfig {
  read(offset: number, size: SmallAccessSize): number;
  write(offset: number, size: SmallAccessSize, value: number): void;
}

interface Physical {
  readonly device: PhysicalConfig;
  /** Per bit: 1 = the device's (read live, written through), 0 = emulated here. */
  readonly bits: Uint8Array;
  /** Per byte: 1 = a guest write also sends the byte's emulated bits to the device. */
  readonly forwarded: Uint8Array;
}

/** A region of config space whose bytes live in an object (a capability body) rather than the register file. */
export interface ConfigOverlay {
  readonly body: Uint8Array;
  readonly writable?: Uint8Array;
  readonly writeOneToClear?: Uint8Array;
  onWrite?(offset: number, size: SmallAccessSize, value: number): void;
  onRead?(offset: number, size: SmallAccessSize): void;
}

interface Placed {
  start: number;
  end: number;
  overlay: ConfigOverlay;
}

/**
 * A function's config space: a masked register file (256 bytes or 4 KiB) plus overlays for capability bodies,
 * which keep their own bytes and masks and may compute bytes live. Accesses are 1, 2 or 4 bytes at any offset
 * that stays inside one dword (so 16-bit registers may be reached half at a time); the bus guarantees that.
 * Storage is byte-granular, so any byte pattern lands in its lanes.
 */
export class ConfigSpace {
  readonly file: MaskedBytes;
  private overlays: Placed[] = [];
  /** Offsets below this touch no overlay, so they take the fast path. */
  private firstOverlay = Infinity;
  private physical: Physical | undefined;

  constructor(size: 256 | 4096) {
    this.file = new MaskedBytes(size);
  }

  get size(): number {
    return this.file.size;
  }

  place(start: number, overlay: ConfigOverlay): void {
    this.overlays.push({ start, end: start + overlay.body.length, overlay });
    this.overlays.sort((a, b) => a.start - b.start);
    this.firstOverlay = Math.min(this.firstOverlay, start);
  }

  /**
   * The masks of one byte, wherever it lives (for checks and debugging): writable and write-1-to-clear (of the
   * emulated bits), and which bits are the physical device's (`backWith`) and whether writes forward the rest.
   */
  masksAt(offset: number): { writable: number; writeOneToClear: number; physical: number; forwarded: boolean } {
    const physical = this.physical?.bits[offset] ?? 0;
    const forwarded = (this.physical?.forwarded[offset] ?? 0) !== 0;
    const p = this.overlays.find((q) => offset >= q.start && offset < q.end);
    if (p) {
      const i = offset - p.start;
      return { writable: p.overlay.writable?.[i] ?? 0, writeOneToClear: p.overlay.writeOneToClear?.[i] ?? 0, physical, forwarded };
    }
    return { writable: this.file.writable[offset] ?? 0, writeOneToClear: this.file.writeOneToClear[offset] ?? 0, physical, forwarded };
  }

  /**
   * Puts a physical device behind this space (passthrough). Every bit stays emulated (served by the register file
   * and overlays, as without a device) until `setPhysical` hands it to the device: such bits are read live from
   * the device on every guest read, merged bit by bit with the emulated ones, and a guest write that touches any
   * of them is written to the device with the access's width and offset: the guest's value in the device's bits,
   * the emulated bits' values (after the write) in the others. `setForwarded` makes writes to wholly emulated
   * bytes reach the device too (a passthrough device must see its command register's decode bits).
   */
  backWith(device: PhysicalConfig): void {
    this.physical = { device, bits: new Uint8Array(this.size), forwarded: new Uint8Array(this.size) };
  }

  /** Hands the bits `mask` of each byte of [offset, offset + length) to the device (1) or back to emulation (0). */
  setPhysical(offset: number, length: number, mask = 0xff): void {
    const p = this.requirePhysical();
    this.checkRange(offset, length);
    p.bits.fill(mask & 0xff, offset, offset + length);
  }

  /** Whether guest writes to the bytes of [offset, offset + length) are sent to the device even where emulated. */
  setForwarded(offset: number, length: number, forwarded = true): void {
    const p = this.requirePhysical();
    this.checkRange(offset, length);
    p.forwarded.fill(forwarded ? 1 : 0, offset, offset + length);
  }

  read(offset: number, size: SmallAccessSize): number {
    const value = this.readEmulated(offset, size);
    const p = this.physical;
    if (!p) return value;
    const bits = readLe(p.bits, offset, size);
    if (bits === 0) return value;
    const device = toUnsigned(p.device.read(offset, size), size);
    return ((value & ~bits) | (device & bits)) >>> 0;
  }

  write(offset: number, size: SmallAccessSize, value: number): void {
    this.writeEmulated(offset, size, value);
    const p = this.physical;
    if (!p) return;
    const bits = readLe(p.bits, offset, size);
    let forward = bits !== 0;
    for (let i = 0; i < size && !forward; i++) forward = p.forwarded[offset + i] === 1;
    if (!forward) return;
    p.device.write(offset, size, ((value & bits) | (this.stored(offset, size) & ~bits)) >>> 0);
  }

  /** True when a physical device sits behind this space (`backWith`): its state is not all here. */
  get backed(): boolean {
    return this.physical !== undefined;
  }

  /**
   * The stored bytes for a snapshot: the register file and each overlay's body, in offset order. Masks are not
   * state (the function's constructor defines them) and `onRead` values are not computed.
   */
  storedBytes(): { readonly file: Uint8Array; readonly overlays: readonly Uint8Array[] } {
    return { file: this.file.bytes.slice(), overlays: this.overlays.map((p) => p.overlay.body.slice()) };
  }

  /** The body length of each overlay, in offset order (what `restoreBytes` expects). */
  overlayLengths(): number[] {
    return this.overlays.map((p) => p.overlay.body.length);
  }

  /**
   * Puts back what `storedBytes` returned, ignoring masks and calling no `onWrite`: the owner brings whatever
   * depends on the bytes in line itself. The lengths must match (`overlayLengths`).
   */
  restoreBytes(file: Uint8Array, overlays: readonly Uint8Array[]): void {
    const lengths = this.overlayLengths();
    if (file.length !== this.size || overlays.length !== lengths.length || overlays.some((o, i) => o.length !== lengths[i])) {
      throw new RangeError("config space: restored bytes do not match the layout");
    }
    this.file.bytes.set(file);
    this.overlays.forEach((p, i) => p.overlay.body.set(overlays[i]!));
  }

  private requirePhysical(): Physical {
    if (!this.physical) throw new RangeError("config space: no physical device behind it (backWith first)");
    return this.physical;
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`config space: [0x${offset.toString(16)}, +0x${length.toString(16)}) is outside its ${this.size} bytes`);
    }
  }

  /** The emulated bytes as they are stored (no live `onRead` computation). */
  private stored(offset: number, size: SmallAccessSize): number {
    let value = 0;
    for (let i = size - 1; i >= 0; i--) {
      const at = offset + i;
      const p = this.overlays.find((q) => at >= q.start && at < q.end);
      value = value * 256 + (p ? p.overlay.body[at - p.start]! : this.file.bytes[at] ?? 0);
    }
    return value;
  }

  private readEmulated(offset: number, size: SmallAccessSize): number {
    if (offset + size <= this.firstOverlay) return this.file.read(offset, size);
    const pieces = this.pieces(offset, size);
    if (pieces.length === 0) return this.file.read(offset, size);
    let value = 0;
    for (let i = size - 1; i >= 0; i--) {
      const at = offset + i;
      const p = pieces.find((q) => at >= q.start && at < q.end);
      const byte = p ? p.overlay.body[at - p.start]! : this.file.bytes[at]!;
      value = value * 256 + byte;
    }
    return value;
  }

  private writeEmulated(offset: number, size: SmallAccessSize, value: number): void {
    if (offset + size <= this.firstOverlay) return this.file.write(offset, size, value);
    const pieces = this.pieces(offset, size, false);
    if (pieces.length === 0) return this.file.write(offset, size, value);
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const byte = (value >>> (8 * i)) & 0xff;
      const p = pieces.find((q) => at >= q.start && at < q.end);
      if (p) maskedWrite(p.overlay.body, p.overlay.writable, p.overlay.writeOneToClear, at - p.start, 1, byte);
      else this.file.write(at, 1, byte);
    }
    for (const p of pieces) {
      if (!p.overlay.onWrite) continue;
      for (const [o, s] of liveChunks(p, offset, size)) p.overlay.onWrite(o - p.start, s, extract(value, o - offset, s));
    }
  }

  /** Overlays touched by an access; on reads, lets each compute its live bytes first. */
  private pieces(offset: number, size: number, read = true): Placed[] {
    const out: Placed[] = [];
    for (const p of this.overlays) {
      if (p.start >= offset + size || p.end <= offset) continue;
      out.push(p);
      if (read && p.overlay.onRead) for (const [o, s] of liveChunks(p, offset, size)) p.overlay.onRead(o - p.start, s);
    }
    return out;
  }
}

/**
 * The part of an access that falls in an overlay, as live-handler calls: one call when it is 1, 2 or 4 bytes
 * (at any offset; a handler with side effects must see one guest access once), natural chunks for 3 bytes.
 */
function liveChunks(p: Placed, offset: number, size: number): Array<[number, SmallAccessSize]> {
  const lo = Math.max(offset, p.start);
  const length = Math.min(offset + size, p.end) - lo;
  return length === 3 ? naturalChunks(lo, 3) : [[lo, length as SmallAccessSize]];
}

function extract(value: number, byteOffset: number, size: number): number {
  const shifted = value >>> (8 * byteOffset);
  return size === 4 ? shifted >>> 0 : shifted & ((1 << (8 * size)) - 1);
}

/** Splits [offset, offset+length) into naturally aligned 1/2/4-byte chunks. */
export function naturalChunks(offset: number, length: number): Array<[number, SmallAccessSize]> {
  const out: Array<[number, SmallAccessSize]> = [];
  let at = offset;
  let left = length;
  while (left > 0) {
    const s: SmallAccessSize = left >= 4 && at % 4 === 0 ? 4 : left >= 2 && at % 2 === 0 ? 2 : 1;
    out.push([at, s]);
    at += s;
    left -= s;
  }
  return out;
}

export { readLe };
