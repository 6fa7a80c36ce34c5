// virtio-blk's request rules (virtio 1.x, 5.2.6), shared by the JS-thread device and its data-plane worker: what a
// chain asks for, checked against the disk, before any I/O. Only the I/O itself differs between the two.
import type { GuestMemory } from "@vmm/core";
import { type ChainSegment, type DescriptorChain, gather, sliceSegments } from "../virtqueue/descriptor-chain.js";

/** Request types (5.2.6). */
export const BlkType = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8, DISCARD: 11, WRITE_ZEROES: 13 } as const;
/** Status byte values. */
export const BlkStatus = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

export const SECTOR = 512;
export const HEADER = 16;
export const ID_BYTES = 20;
/** Largest DISCARD / WRITE_ZEROES range (sectors) and ranges per request advertised in the config. */
export const MAX_ZERO_SECTORS = 32768;
export const MAX_ZERO_SEGMENTS = 1;
/** virtio_blk_discard_write_zeroes: sector (8), num_sectors (4), flags (4). */
const RANGE_BYTES = 16;
const RANGE_F_UNMAP = 1;
/** A header that does not sit in one buffer is gathered here (requests are parsed one at a time per thread). */
const scratch = new Uint8Array(HEADER);
const scratchView = new DataView(scratch.buffer);

/** What the request checks need to know about the disk. */
export interface BlkDisk {
  /** Sectors of 512 bytes. */
  readonly capacity: bigint;
  readonly readonly: boolean;
}

/** A checked request: the I/O to do, or the status it completes with at once. */
export type BlkRequest =
  | { readonly kind: "done"; readonly status: number; readonly error?: unknown; readonly why?: string }
  | { readonly kind: "read" | "write"; readonly position: number; readonly length: number; readonly data: ChainSegment[] }
  | { readonly kind: "flush" }
  | { readonly kind: "get-id"; readonly data: ChainSegment[]; readonly length: number }
  | { readonly kind: "zero"; readonly start: number; readonly end: number };

/** A chain's status byte (its last writable byte), or undefined when it has none (the chain completes with 0). */
export function statusSegments(chain: DescriptorChain): ChainSegment[] | undefined {
  return chain.writableBytes < 1 ? undefined : sliceSegments(chain.writable, chain.writableBytes - 1, 1);
}

/**
 * The guest address of a chain's status byte (its last writable byte), or undefined when it has none: what
 * `statusSegments` finds, as one address the data-plane worker writes with `GuestMemory.writeU8`.
 */
export function statusAddress(chain: DescriptorChain): number | undefined {
  if (chain.writableBytes < 1) return undefined;
  for (let i = chain.writable.length - 1; i >= 0; i--) {
    const s = chain.writable[i]!;
    if (s.len > 0) return s.addr + s.len - 1;
  }
  return undefined;
}

/** GET_ID's answer: the serial NUL-padded to `length` bytes (at most 20). */
export function idBytes(serial: Uint8Array, length: number): Uint8Array {
  const id = new Uint8Array(length);
  id.set(serial.subarray(0, length));
  return id;
}

/**
 * Reads the header (and a DISCARD / WRITE_ZEROES range) from guest memory and checks the request against the
 * disk: sectors past the end, lengths that are not whole sectors, writes to a read-only disk and malformed
 * ranges are IOERR; unknown types and unknown range flags are UNSUPP. A header outside RAM is IOERR.
 */
export function parseBlkRequest(memory: GuestMemory, chain: DescriptorChain, disk: BlkDisk): BlkRequest {
  let type: number, sector: number;
  try {
    const first = chain.readable[0];
    let lo: number, hi: number;
    if (first !== undefined && first.len >= HEADER) {
      // The usual layout (the header in one buffer): three loads, no copy.
      type = memory.readU32(first.addr);
      lo = memory.readU32(first.addr + 8);
      hi = memory.readU32(first.addr + 12);
    } else {
      if (gather(memory, chain.readable, 0, scratch) < HEADER) return { kind: "done", status: BlkStatus.IOERR };
      type = scratchView.getUint32(0, true);
      lo = scratchView.getUint32(8, true);
      hi = scratchView.getUint32(12, true);
    }
    // A sector from 2^53 on lies past any disk: it becomes MAX_SAFE_INTEGER, which transfer() rejects.
    sector = hi < 2 ** 21 ? hi * 2 ** 32 + lo : Number.MAX_SAFE_INTEGER;
  } catch (e) {
    return { kind: "done", status: BlkStatus.IOERR, error: e };
  }
  switch (type) {
    case BlkType.IN:
      return transfer("read", sector, sliceSegments(chain.writable, 0, chain.writableBytes - 1), chain.writableBytes - 1, disk);
    case BlkType.OUT:
      if (disk.readonly) return { kind: "done", status: BlkStatus.IOERR };
      return transfer("write", sector, sliceSegments(chain.readable, HEADER, chain.readableBytes - HEADER), chain.readableBytes - HEADER, disk);
    case BlkType.FLUSH:
      return { kind: "flush" };
    case BlkType.GET_ID:
      return { kind: "get-id", data: sliceSegments(chain.writable, 0, chain.writableBytes - 1), length: Math.min(ID_BYTES, chain.writableBytes - 1) };
    case BlkType.DISCARD:
    case BlkType.WRITE_ZEROES:
      if (disk.readonly) return { kind: "done", status: BlkStatus.IOERR };
      return zeroRange(memory, chain, type === BlkType.DISCARD, disk);
    default:
      return { kind: "done", status: BlkStatus.UNSUPP };
  }
}

function transfer(kind: "read" | "write", sector: number, data: ChainSegment[], length: number, disk: BlkDisk): BlkRequest {
  // Numbers, not bigints (no allocation per request): exact for any disk under 2^53 sectors (4 EiB).
  if (length <= 0 || length % SECTOR !== 0 || sector >= Number.MAX_SAFE_INTEGER || sector + length / SECTOR > Number(disk.capacity)) {
    return { kind: "done", status: BlkStatus.IOERR, why: `rejected ${kind} of ${length} bytes at sector ${sector}` };
  }
  return { kind, position: sector * SECTOR, length, data };
}

/**
 * DISCARD and WRITE_ZEROES (5.2.6): one range of whole sectors inside the disk. A raw file cannot punch holes
 * from node, so both write zeros (reading a discarded range may return anything, zeros included).
 */
function zeroRange(memory: GuestMemory, chain: DescriptorChain, discard: boolean, disk: BlkDisk): BlkRequest {
  const body = new Uint8Array(RANGE_BYTES);
  try {
    if (chain.readableBytes - HEADER !== RANGE_BYTES * MAX_ZERO_SEGMENTS) return { kind: "done", status: BlkStatus.UNSUPP };
    gather(memory, chain.readable, HEADER, body);
  } catch (e) {
    return { kind: "done", status: BlkStatus.IOERR, error: e };
  }
  const r = new DataView(body.buffer);
  const sector = r.getBigUint64(0, true);
  const sectors = r.getUint32(8, true);
  const flags = r.getUint32(12, true);
  // The only flag is UNMAP, and only for WRITE_ZEROES; anything else is unsupported.
  if (flags & ~RANGE_F_UNMAP || (discard && flags)) return { kind: "done", status: BlkStatus.UNSUPP };
  if (sectors === 0 || sectors > MAX_ZERO_SECTORS || sector + BigInt(sectors) > disk.capacity) return { kind: "done", status: BlkStatus.IOERR };
  const start = Number(sector) * SECTOR;
  return { kind: "zero", start, end: start + sectors * SECTOR };
}
