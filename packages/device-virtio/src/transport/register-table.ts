/** Access widths a register table serves. */
export type Width = 1 | 2 | 4;

/** One register of a declarative table: where it is, how wide, and what reading or writing it does. */
export interface Register<S> {
  readonly name: string;
  readonly offset: number;
  readonly width: Width;
  read(state: S): number;
  /** Absent: read-only, writes are ignored. */
  write?(state: S, value: number): void;
}

const MASK = [0, 0xff, 0xffff, 0, 0xffff_ffff] as const;

/** `value` cut to `width` bytes, unsigned: `& 0xffff_ffff` alone yields a negative number when bit 31 is set. */
export const unsigned = (value: number, width: Width): number => (value & MASK[width]) >>> 0;

/**
 * Dispatches accesses to a table of registers. An access matching a register exactly goes straight to it;
 * other accesses are assembled byte by byte (reads) or merged read-modify-write (writes), and bytes no
 * register covers read as 0 and ignore writes.
 */
export class RegisterTable<S> {
  private readonly byByte: (Register<S> | undefined)[];

  constructor(
    readonly registers: readonly Register<S>[],
    readonly size: number,
  ) {
    this.byByte = new Array<Register<S> | undefined>(size).fill(undefined);
    for (const r of registers) {
      for (let i = 0; i < r.width; i++) {
        if (this.byByte[r.offset + i]) throw new Error(`register ${r.name} overlaps ${this.byByte[r.offset + i]!.name}`);
        this.byByte[r.offset + i] = r;
      }
    }
  }

  read(state: S, offset: number, size: Width): number {
    const exact = this.byByte[offset];
    if (exact && exact.offset === offset && exact.width === size) return unsigned(exact.read(state), size);
    let value = 0;
    for (let i = size - 1; i >= 0; i--) {
      const r = this.byByte[offset + i];
      const byte = r ? (r.read(state) >>> (8 * (offset + i - r.offset))) & 0xff : 0;
      value = (value << 8) | byte;
    }
    return value >>> 0;
  }

  write(state: S, offset: number, size: Width, value: number): void {
    const exact = this.byByte[offset];
    if (exact && exact.offset === offset && exact.width === size) {
      exact.write?.(state, unsigned(value, size));
      return;
    }
    const touched = new Set<Register<S>>();
    for (let i = 0; i < size; i++) {
      const r = this.byByte[offset + i];
      if (r?.write) touched.add(r);
    }
    for (const r of touched) {
      let merged = r.read(state);
      for (let i = 0; i < size; i++) {
        const at = offset + i - r.offset;
        if (at < 0 || at >= r.width) continue;
        const byte = (value >>> (8 * i)) & 0xff;
        merged = (merged & ~(0xff << (8 * at))) | (byte << (8 * at));
      }
      r.write!(state, unsigned(merged, r.width));
    }
  }
}

/** Reads `size` little-endian bytes of `bytes` at `offset` (bytes past the end read as 0). */
export function readBytesLE(bytes: Uint8Array, offset: number, size: Width): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = (v << 8) | (bytes[offset + i] ?? 0);
  return v >>> 0;
}
