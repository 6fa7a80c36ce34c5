import type { RegisterWidth } from "@vmm/core";

/**
 * A trapped piece of a region with register semantics (a register table, the MSI-X table): accesses reach it in
 * naturally aligned pieces of 1, 2 or 4 bytes, offsets relative to the window.
 */
export interface RegionWindow {
  readonly name: string;
  readonly offset: number;
  readonly size: number;
  read(offset: number, width: RegisterWidth): number;
  write(offset: number, width: RegisterWidth, value: number): void;
}

/** A part of a region the client may mmap (offset and size, page multiples). */
export interface MmapArea {
  readonly offset: number;
  readonly size: number;
}

/** Memory the server and the client share: a memfd the server maps; `fd` is undefined for private memory. */
export interface SharedMemory {
  readonly bytes: Uint8Array;
  readonly fd: number | undefined;
  close(): void;
}

/**
 * One region of the device (a BAR or the ROM): `backing` holds its bytes, windows with register semantics lie
 * over parts of it. A read or write of any length is cut at window edges; inside a window into aligned pieces of
 * at most 4 bytes (an 8-byte access is two 4-byte ones, low first); elsewhere it copies bytes.
 */
export class Region {
  private readonly windows: RegionWindow[];

  constructor(
    readonly index: number,
    readonly size: number,
    readonly backing: SharedMemory,
    windows: readonly RegionWindow[],
    /** Parts the client may mmap (empty: none); only offered when `backing.fd` exists. */
    readonly mmapAreas: readonly MmapArea[],
    readonly writable: boolean,
  ) {
    this.windows = [...windows].sort((a, b) => a.offset - b.offset);
    let end = 0;
    for (const w of this.windows) {
      if (w.offset < end || w.offset + w.size > size) throw new RangeError(`region ${index}: window ${w.name} overlaps another or runs past the region`);
      end = w.offset + w.size;
    }
    if (backing.bytes.length < size) throw new RangeError(`region ${index}: ${backing.bytes.length} bytes of backing for ${size}`);
  }

  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.walk(offset, length, (window, at, width, pos) => {
      const value = window.read(pos - window.offset, width);
      for (let i = 0; i < width; i++) out[at + i] = (value >>> (8 * i)) & 0xff;
    }, (at, pos, count) => out.set(this.backing.bytes.subarray(pos, pos + count), at));
    return out;
  }

  write(offset: number, data: Uint8Array): void {
    this.walk(offset, data.length, (window, at, width, pos) => {
      let value = 0;
      for (let i = 0; i < width; i++) value |= data[at + i]! << (8 * i);
      window.write(pos - window.offset, width, value >>> 0);
    }, (at, pos, count) => this.backing.bytes.set(data.subarray(at, at + count), pos));
  }

  private walk(
    offset: number,
    length: number,
    register: (window: RegionWindow, at: number, width: RegisterWidth, pos: number) => void,
    bytes: (at: number, pos: number, count: number) => void,
  ): void {
    let at = 0;
    while (at < length) {
      const pos = offset + at;
      const window = this.windows.find((w) => w.offset <= pos && pos < w.offset + w.size);
      if (window) {
        const limit = Math.min(length - at, window.offset + window.size - pos);
        const width = naturalWidth(pos, limit);
        register(window, at, width, pos);
        at += width;
      } else {
        const next = this.windows.find((w) => w.offset > pos);
        const count = Math.min(length - at, (next?.offset ?? this.size) - pos);
        bytes(at, pos, count);
        at += count;
      }
    }
  }
}

/** The widest aligned access at `pos` that fits in `limit` bytes. */
function naturalWidth(pos: number, limit: number): RegisterWidth {
  if (pos % 4 === 0 && limit >= 4) return 4;
  if (pos % 2 === 0 && limit >= 2) return 2;
  return 1;
}

/** Private memory for a region nobody maps. */
export function privateMemory(size: number): SharedMemory {
  return { bytes: new Uint8Array(size), fd: undefined, close: () => undefined };
}
