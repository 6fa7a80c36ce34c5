import { ConfigurationError, GuestMemoryError } from "./errors.js";

/** One contiguous block of guest RAM. `bytes` may be native memory shared with KVM. */
export interface RamRegion {
  readonly gpa: number;
  readonly bytes: Uint8Array;
}

interface Region extends RamRegion {
  readonly end: number;
  readonly view: DataView;
}

/**
 * A bounds-checked view of guest RAM by guest-physical address. Every access is checked against the regions;
 * one that falls outside (or straddles two regions) throws GuestMemoryError and touches nothing.
 * Multi-byte values are little-endian.
 */
export class GuestMemory {
  private readonly regions: Region[];

  constructor(regions: readonly RamRegion[]) {
    this.regions = regions
      .map((r) => ({
        gpa: r.gpa,
        bytes: r.bytes,
        end: r.gpa + r.bytes.length,
        view: new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength),
      }))
      .sort((a, b) => a.gpa - b.gpa);
    for (let i = 1; i < this.regions.length; i++) {
      if (this.regions[i]!.gpa < this.regions[i - 1]!.end) {
        throw new ConfigurationError(`guest RAM regions overlap at 0x${this.regions[i]!.gpa.toString(16)}`);
      }
    }
  }

  /** Regions sorted by address. */
  list(): readonly RamRegion[] {
    return this.regions;
  }

  /** Total bytes of RAM. */
  get size(): number {
    return this.regions.reduce((n, r) => n + r.bytes.length, 0);
  }

  /** True when [gpa, gpa+length) lies inside one region. */
  contains(gpa: number, length: number): boolean {
    return this.regionOf(gpa, length) !== undefined;
  }

  /** A live view (no copy) of [gpa, gpa+length). */
  view(gpa: number, length: number): Uint8Array {
    const r = this.check(gpa, length);
    const off = gpa - r.gpa;
    return r.bytes.subarray(off, off + length);
  }

  /** Copies guest bytes into `dst`. */
  read(gpa: number, dst: Uint8Array): void {
    dst.set(this.view(gpa, dst.length));
  }

  /** Copies `src` into guest RAM. */
  write(gpa: number, src: Uint8Array): void {
    this.view(gpa, src.length).set(src);
  }

  readU8(gpa: number): number {
    const r = this.check(gpa, 1);
    return r.bytes[gpa - r.gpa]!;
  }
  readU16(gpa: number): number {
    const r = this.check(gpa, 2);
    return r.view.getUint16(gpa - r.gpa, true);
  }
  readU32(gpa: number): number {
    const r = this.check(gpa, 4);
    return r.view.getUint32(gpa - r.gpa, true);
  }
  readU64(gpa: number): bigint {
    const r = this.check(gpa, 8);
    return r.view.getBigUint64(gpa - r.gpa, true);
  }
  writeU8(gpa: number, value: number): void {
    const r = this.check(gpa, 1);
    r.bytes[gpa - r.gpa] = value;
  }
  writeU16(gpa: number, value: number): void {
    const r = this.check(gpa, 2);
    r.view.setUint16(gpa - r.gpa, value, true);
  }
  writeU32(gpa: number, value: number): void {
    const r = this.check(gpa, 4);
    r.view.setUint32(gpa - r.gpa, value >>> 0, true);
  }
  writeU64(gpa: number, value: bigint): void {
    const r = this.check(gpa, 8);
    r.view.setBigUint64(gpa - r.gpa, BigInt.asUintN(64, value), true);
  }

  private regionOf(gpa: number, length: number): Region | undefined {
    if (!Number.isSafeInteger(gpa) || !Number.isSafeInteger(length) || gpa < 0 || length < 0) return undefined;
    for (const r of this.regions) {
      if (gpa >= r.gpa && gpa + length <= r.end) return r;
      if (gpa < r.gpa) break;
    }
    return undefined;
  }

  private check(gpa: number, length: number): Region {
    const r = this.regionOf(gpa, length);
    if (!r) throw new GuestMemoryError(gpa, length);
    return r;
  }
}
