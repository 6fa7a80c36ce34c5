/** What a field declares: its reset value and which of its bits the client may write or write-1-to-clear. */
export interface FieldMasks {
  readonly writable?: number;
  readonly w1c?: number;
}

/** Told after a write that touched its range: the offset and bytes as the client wrote them (before masking). */
export type ConfigWriteHook = (offset: number, data: Uint8Array) => void;

interface HookEntry {
  readonly start: number;
  readonly end: number;
  readonly hook: ConfigWriteHook;
}

/**
 * A PCI configuration space as a register file with per-bit masks, as hardware decodes it: each written bit lands
 * only where the writable mask has a 1, a 1 written where the write-1-to-clear mask has a 1 clears the bit, every
 * other bit keeps its value. BAR sizing needs no special case (the BAR's writable mask is ~(size - 1)). Fields with
 * side effects register hooks that run after the bytes are stored.
 */
export class ConfigSpace {
  readonly bytes: Uint8Array;
  private readonly writable: Uint8Array;
  private readonly w1c: Uint8Array;
  private readonly hooks: HookEntry[] = [];
  private resetImage: Uint8Array | undefined;

  constructor(readonly size: 256 | 4096) {
    this.bytes = new Uint8Array(size);
    this.writable = new Uint8Array(size);
    this.w1c = new Uint8Array(size);
  }

  /** Declares a field of `width` bytes: its reset value and masks. Fields must not be declared twice. */
  define(offset: number, width: 1 | 2 | 4, value: number, masks: FieldMasks = {}): void {
    this.checkRange(offset, width);
    for (let i = 0; i < width; i++) {
      this.bytes[offset + i] = (value >>> (8 * i)) & 0xff;
      this.writable[offset + i] = ((masks.writable ?? 0) >>> (8 * i)) & 0xff;
      this.w1c[offset + i] = ((masks.w1c ?? 0) >>> (8 * i)) & 0xff;
    }
  }

  /** Calls `hook` after every write that touches [offset, offset + length). */
  onWrite(offset: number, length: number, hook: ConfigWriteHook): void {
    this.checkRange(offset, length);
    this.hooks.push({ start: offset, end: offset + length, hook });
  }

  /** Remembers the current bytes as what `reset()` restores (after the device has built its space). */
  sealResetImage(): void {
    this.resetImage = this.bytes.slice();
  }

  reset(): void {
    if (this.resetImage) this.bytes.set(this.resetImage);
  }

  read(offset: number, length: number): Uint8Array {
    this.checkRange(offset, length);
    return this.bytes.slice(offset, offset + length);
  }

  /** A client's write: masked per bit, then the hooks of every field it touched. */
  write(offset: number, data: Uint8Array): void {
    this.checkRange(offset, data.length);
    for (let i = 0; i < data.length; i++) {
      const at = offset + i;
      const value = data[i]!;
      const kept = this.bytes[at]! & ~this.writable[at]!;
      const cleared = value & this.w1c[at]!;
      this.bytes[at] = (kept | (value & this.writable[at]!)) & ~cleared;
    }
    const end = offset + data.length;
    for (const entry of this.hooks) {
      if (entry.start < end && offset < entry.end) entry.hook(offset, data);
    }
  }

  u8(offset: number): number {
    return this.bytes[offset]!;
  }

  u16(offset: number): number {
    return this.bytes[offset]! | (this.bytes[offset + 1]! << 8);
  }

  u32(offset: number): number {
    return (this.u16(offset) | (this.u16(offset + 2) << 16)) >>> 0;
  }

  /** The device's own update of a field (status bits, pending bits): no masks, no hooks. */
  set(offset: number, width: 1 | 2 | 4, value: number): void {
    this.checkRange(offset, width);
    for (let i = 0; i < width; i++) this.bytes[offset + i] = (value >>> (8 * i)) & 0xff;
  }

  private checkRange(offset: number, length: number): void {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`config access [0x${offset.toString(16)}, +${length}) outside the ${this.size}-byte space`);
    }
  }
}

/** Which bytes of a write at `offset` fall in [start, start + width), as a value (what the client wrote there). */
export function writtenValue(offset: number, data: Uint8Array, start: number, width: number): { value: number; mask: number } {
  let value = 0;
  let mask = 0;
  for (let i = 0; i < width; i++) {
    const at = start + i - offset;
    if (at < 0 || at >= data.length) continue;
    value |= data[at]! << (8 * i);
    mask |= 0xff << (8 * i);
  }
  return { value: value >>> 0, mask: mask >>> 0 };
}
