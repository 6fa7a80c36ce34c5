import { Errno, PAGE_SIZE } from "../protocol/constants.js";
import { invalid, ProtocolError } from "../protocol/errors.js";

/** Client memory the server may reach directly: an fd it sent, mapped on demand. */
export interface DmaFile {
  /** A copy of `length` bytes at `offset` into the window. */
  read(offset: number, length: number): Uint8Array;
  /** Stores `data` at `offset` into the window: the client sees it at once (shared memory). */
  write(offset: number, data: Uint8Array): void;
  close(): void;
}

/** One VFIO_USER_DMA_MAP window. Addresses are bigints: IOVAs use all 64 bits. */
export interface DmaRegion {
  readonly address: bigint;
  readonly size: bigint;
  readonly readable: boolean;
  readonly writable: boolean;
  /** Present when the client sent an fd; absent: reached with DMA_READ/DMA_WRITE messages. */
  readonly file: DmaFile | undefined;
}

/** A piece of a transfer that lies in one region. */
export interface DmaSegment {
  readonly region: DmaRegion;
  /** The piece's DMA address. */
  readonly address: bigint;
  /** Offset of the piece inside the region. */
  readonly offset: number;
  readonly length: number;
  /** Offset of the piece inside the transfer. */
  readonly at: number;
}

export type DmaAccess = "read" | "write";

const U64_END = 1n << 64n;

/** The client's DMA windows: no two overlap; a transfer may run across adjacent ones. */
export class DmaMap {
  private regions: DmaRegion[] = [];

  constructor(private readonly maxRegions: number) {}

  get size(): number {
    return this.regions.length;
  }

  list(): readonly DmaRegion[] {
    return this.regions;
  }

  /** Checks a new window against the map (EINVAL, EEXIST for an overlap, ENOSPC when full). */
  checkAdd(address: bigint, size: bigint): void {
    if (size === 0n) throw invalid("DMA_MAP: size 0");
    if (address + size > U64_END) throw invalid(`DMA_MAP: 0x${address.toString(16)} + 0x${size.toString(16)} wraps past 2^64`);
    if (address % BigInt(PAGE_SIZE) !== 0n || size % BigInt(PAGE_SIZE) !== 0n) {
      throw invalid(`DMA_MAP: address 0x${address.toString(16)} and size 0x${size.toString(16)} must be multiples of the ${PAGE_SIZE}-byte page`);
    }
    const clash = this.regions.find((r) => address < r.address + r.size && r.address < address + size);
    if (clash) {
      throw new ProtocolError(Errno.EEXIST, `DMA_MAP: [0x${address.toString(16)}, +0x${size.toString(16)}) overlaps the window at 0x${clash.address.toString(16)}`);
    }
    if (this.regions.length >= this.maxRegions) throw new ProtocolError(Errno.ENOSPC, `DMA_MAP: already ${this.regions.length} windows, the most this server takes`);
  }

  add(region: DmaRegion): void {
    this.checkAdd(region.address, region.size);
    this.regions.push(region);
    this.regions.sort((a, b) => (a.address < b.address ? -1 : 1));
  }

  /** Removes the window that is exactly [address, address + size) and releases its file (ENOENT when none is). */
  remove(address: bigint, size: bigint): void {
    const index = this.regions.findIndex((r) => r.address === address && r.size === size);
    if (index < 0) throw new ProtocolError(Errno.ENOENT, `DMA_UNMAP: no window is exactly [0x${address.toString(16)}, +0x${size.toString(16)})`);
    const [region] = this.regions.splice(index, 1);
    region!.file?.close();
  }

  removeAll(): void {
    for (const region of this.regions) region.file?.close();
    this.regions = [];
  }

  /**
   * The pieces of [address, address + length) in the map, in order, or why the transfer is not allowed: a byte that
   * no window covers, or a window without the access asked for.
   */
  resolve(address: bigint, length: number, access: DmaAccess): DmaSegment[] | string {
    const segments: DmaSegment[] = [];
    let at = 0;
    while (at < length) {
      const here = address + BigInt(at);
      const region = this.regions.find((r) => r.address <= here && here < r.address + r.size);
      if (!region) return `0x${here.toString(16)} is in no DMA window`;
      if (access === "read" ? !region.readable : !region.writable) return `the window at 0x${region.address.toString(16)} is not ${access === "read" ? "readable" : "writable"}`;
      const offset = here - region.address;
      const left = region.size - offset;
      const take = left < BigInt(length - at) ? Number(left) : length - at;
      segments.push({ region, address: here, offset: Number(offset), length: take, at });
      at += take;
    }
    return segments;
  }
}
