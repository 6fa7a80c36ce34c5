import { ConfigurationError, GuestMemoryError } from "./errors.js";

/** One contiguous block of guest RAM. `bytes` may be native memory shared with KVM. */
export interface RamRegion {
  readonly gpa: number;
  readonly bytes: Uint8Array;
  /**
   * The file behind `bytes`, when there is one (the machine backs guest RAM with a memfd): `bytes[0]` is byte
   * `offset` of `fd`. Passthrough devices hand the fd to a device process so it maps the same pages for DMA. The
   * machine owns the fd; do not close it.
   */
  readonly file?: { readonly fd: number; readonly offset: number };
}

interface Region extends RamRegion {
  readonly end: number;
  readonly view: DataView;
}

/**
 * A bounds-checked view of guest RAM by guest-physical address. Every access is checked against the regions
 * before anything is touched; one that falls outside RAM or touches a hole throws GuestMemoryError and touches
 * nothing. Adjacent regions (one ends where the next begins, as the host splits big RAM into ArrayBuffers of at
 * most 4 GiB) form one run of RAM: reads, writes and `segments` may cross from one into the next; only `view`,
 * which returns a single Uint8Array, cannot. Multi-byte values are little-endian.
 */
export class GuestMemory {
  private readonly regions: Region[];
  /** Bounce bytes for a value that crosses from one region into the next. */
  private readonly scratch = new Uint8Array(8);
  private readonly scratchView = new DataView(this.scratch.buffer);

  constructor(regions: readonly RamRegion[]) {
    this.regions = regions
      .map((r) => ({
        gpa: r.gpa,
        bytes: r.bytes,
        ...(r.file ? { file: { fd: r.file.fd, offset: r.file.offset } } : {}),
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

  /** True when [gpa, gpa+length) lies inside RAM (one region, or a run of adjacent regions). */
  contains(gpa: number, length: number): boolean {
    return this.regionOf(gpa, length) !== undefined || this.runOf(gpa, length) !== undefined;
  }

  /**
   * A live view (no copy) of [gpa, gpa+length). Throws GuestMemoryError also when the span crosses from one
   * region into an adjacent one, which one Uint8Array cannot cover: spans that come from the guest (DMA
   * buffers) may do that, so their users take `segments`, `read` or `write` instead.
   */
  view(gpa: number, length: number): Uint8Array {
    const r = this.check(gpa, length);
    const off = gpa - r.gpa;
    return r.bytes.subarray(off, off + length);
  }

  /**
   * Live views (no copies) of [gpa, gpa+length) in address order, one per region the span touches (a span
   * inside one region, an empty one included, gives one view). For zero-copy I/O such as readv/writev.
   * Throws GuestMemoryError when any part of the span lies outside RAM.
   */
  segments(gpa: number, length: number): Uint8Array[] {
    const r = this.regionOf(gpa, length);
    if (r) return [r.bytes.subarray(gpa - r.gpa, gpa - r.gpa + length)];
    const run = this.runOf(gpa, length);
    if (run === undefined) throw new GuestMemoryError(gpa, length);
    const out: Uint8Array[] = [];
    const end = gpa + length;
    for (let i = run; gpa < end; i++) {
      const region = this.regions[i]!;
      const n = Math.min(region.end, end) - gpa;
      out.push(region.bytes.subarray(gpa - region.gpa, gpa - region.gpa + n));
      gpa += n;
    }
    return out;
  }

  /** Copies guest bytes into `dst`. */
  read(gpa: number, dst: Uint8Array): void {
    const r = this.regionOf(gpa, dst.length);
    if (r) {
      dst.set(r.bytes.subarray(gpa - r.gpa, gpa - r.gpa + dst.length));
      return;
    }
    let done = 0;
    for (const part of this.segments(gpa, dst.length)) {
      dst.set(part, done);
      done += part.length;
    }
  }

  /** Copies `src` into guest RAM (all of it, or nothing when any part lies outside RAM). */
  write(gpa: number, src: Uint8Array): void {
    const r = this.regionOf(gpa, src.length);
    if (r) {
      r.bytes.set(src, gpa - r.gpa);
      return;
    }
    let done = 0;
    // segments() checks the whole span before the first byte is written.
    for (const part of this.segments(gpa, src.length)) {
      part.set(src.subarray(done, done + part.length));
      done += part.length;
    }
  }

  // Values: one region is the hot path; a value crossing into an adjacent region (rare) goes through `scratch`.
  readU8(gpa: number): number {
    const r = this.check(gpa, 1);
    return r.bytes[gpa - r.gpa]!;
  }
  readU16(gpa: number): number {
    const r = this.regionOf(gpa, 2);
    if (r) return r.view.getUint16(gpa - r.gpa, true);
    return this.readAcross(gpa, 2).getUint16(0, true);
  }
  readU32(gpa: number): number {
    const r = this.regionOf(gpa, 4);
    if (r) return r.view.getUint32(gpa - r.gpa, true);
    return this.readAcross(gpa, 4).getUint32(0, true);
  }
  readU64(gpa: number): bigint {
    const r = this.regionOf(gpa, 8);
    if (r) return r.view.getBigUint64(gpa - r.gpa, true);
    return this.readAcross(gpa, 8).getBigUint64(0, true);
  }
  writeU8(gpa: number, value: number): void {
    const r = this.check(gpa, 1);
    r.bytes[gpa - r.gpa] = value;
  }
  writeU16(gpa: number, value: number): void {
    const r = this.regionOf(gpa, 2);
    if (r) return r.view.setUint16(gpa - r.gpa, value, true);
    this.scratchView.setUint16(0, value, true);
    this.write(gpa, this.scratch.subarray(0, 2));
  }
  writeU32(gpa: number, value: number): void {
    const r = this.regionOf(gpa, 4);
    if (r) return r.view.setUint32(gpa - r.gpa, value >>> 0, true);
    this.scratchView.setUint32(0, value >>> 0, true);
    this.write(gpa, this.scratch.subarray(0, 4));
  }
  writeU64(gpa: number, value: bigint): void {
    const r = this.regionOf(gpa, 8);
    if (r) return r.view.setBigUint64(gpa - r.gpa, BigInt.asUintN(64, value), true);
    this.scratchView.setBigUint64(0, BigInt.asUintN(64, value), true);
    this.write(gpa, this.scratch.subarray(0, 8));
  }

  private readAcross(gpa: number, length: number): DataView {
    this.read(gpa, this.scratch.subarray(0, length));
    return this.scratchView;
  }

  /**
   * The index of the region where [gpa, gpa+length) starts when the span runs on through adjacent regions
   * (each ending where the next begins) and ends inside RAM; undefined otherwise. The slow path of a check.
   */
  private runOf(gpa: number, length: number): number | undefined {
    if (!Number.isSafeInteger(gpa) || !Number.isSafeInteger(length) || gpa < 0 || length < 0) return undefined;
    const end = gpa + length;
    const regions = this.regions;
    for (let i = 0; i < regions.length; i++) {
      const r = regions[i]!;
      if (gpa < r.gpa) return undefined;
      if (gpa >= r.end) continue;
      for (let j = i; ; j++) {
        if (end <= regions[j]!.end) return i;
        const next = regions[j + 1];
        if (next === undefined || next.gpa !== regions[j]!.end) return undefined;
      }
    }
    return undefined;
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
