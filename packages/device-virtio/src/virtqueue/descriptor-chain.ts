import type { GuestMemory } from "@vmm/core";
import { GuestMemoryError } from "@vmm/core";
import { VirtqueueError } from "./errors.js";

/** Descriptor flags (virtio 1.x, 2.7.5). */
export const DescFlag = { NEXT: 1, WRITE: 2, INDIRECT: 4 } as const;
export const DESCRIPTOR_SIZE = 16;

/** One guest buffer of a chain. */
export interface ChainSegment {
  readonly addr: number;
  readonly len: number;
}

/** A parsed chain: device-readable buffers first, then device-writable ones (the spec's required order). */
export interface DescriptorChain {
  readonly head: number;
  readonly readable: readonly ChainSegment[];
  readonly writable: readonly ChainSegment[];
  readonly readableBytes: number;
  readonly writableBytes: number;
  /** Entries of the queue's descriptor table the chain holds (an indirect chain holds one). */
  readonly tableEntries: number;
}

export interface ChainLimits {
  /** Most descriptors in one chain, direct and indirect together (the queue size: 2.7.5.3.1). */
  readonly maxDescriptors: number;
  /** Most bytes in one chain (readable + writable). */
  readonly maxBytes: number;
  /** VIRTIO_F_RING_INDIRECT_DESC was negotiated. */
  readonly indirect: boolean;
}

/**
 * Walks the chain starting at `head` of the descriptor table at `table` (`size` entries). Every descriptor is
 * read through the bounds-checked GuestMemory; loops and over-long chains stop at `maxDescriptors`. Throws
 * VirtqueueError for any rule the driver broke; never reads outside guest RAM.
 */
export function walkChain(memory: GuestMemory, queue: number, table: number, size: number, head: number, limits: ChainLimits): DescriptorChain {
  const fail = (why: string, cause?: unknown): never => {
    throw new VirtqueueError(queue, `chain at head ${head}: ${why}`, cause === undefined ? undefined : { cause });
  };
  const readable: ChainSegment[] = [];
  const writable: ChainSegment[] = [];
  let readableBytes = 0;
  let writableBytes = 0;
  let base = table;
  let entries = size;
  let indirect = false;
  let index = head;
  let seen = 0;
  let tableEntries = 0;
  for (;;) {
    if (index >= entries) fail(`descriptor index ${index} outside a table of ${entries}`);
    if (++seen > limits.maxDescriptors) fail(`longer than ${limits.maxDescriptors} descriptors (a loop?)`);
    if (!indirect) tableEntries++;
    const at = base + index * DESCRIPTOR_SIZE;
    let addr: number, addrHigh: number, len: number, flags: number, next: number;
    try {
      // The 64-bit address as two words: no bigint per descriptor. From 2^53 on (high word 2^21) it is unusable.
      addr = memory.readU32(at);
      addrHigh = memory.readU32(at + 4);
      len = memory.readU32(at + 8);
      flags = memory.readU16(at + 12);
      next = memory.readU16(at + 14);
    } catch (e) {
      if (e instanceof GuestMemoryError) return fail(`descriptor table outside RAM at 0x${at.toString(16)}`, e);
      throw e;
    }
    if (flags & DescFlag.INDIRECT) {
      if (!limits.indirect) fail("indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC");
      if (indirect) fail("nested indirect table");
      if (flags & DescFlag.NEXT) fail("indirect descriptor with NEXT set");
      if (len === 0 || len % DESCRIPTOR_SIZE !== 0) fail(`indirect table length ${len} is not a positive multiple of 16`);
      if (addrHigh >= 2 ** 21) fail("indirect table address out of range");
      indirect = true;
      base = addrHigh * 2 ** 32 + addr;
      entries = len / DESCRIPTOR_SIZE;
      index = 0;
      continue;
    }
    if (addrHigh >= 2 ** 21) fail("buffer address out of range");
    const segment = { addr: addrHigh * 2 ** 32 + addr, len };
    if (flags & DescFlag.WRITE) {
      writable.push(segment);
      writableBytes += len;
    } else {
      if (writable.length > 0) fail("device-readable descriptor after a device-writable one");
      readable.push(segment);
      readableBytes += len;
    }
    if (readableBytes + writableBytes > limits.maxBytes) fail(`more than ${limits.maxBytes} bytes`);
    if (!(flags & DescFlag.NEXT)) break;
    index = next;
  }
  return { head, readable, writable, readableBytes, writableBytes, tableEntries };
}

/**
 * Copies bytes from the segments (starting `offset` bytes into them) into `dst`; returns how many were copied
 * (fewer when the segments end first). Throws GuestMemoryError when a segment lies outside RAM.
 */
export function gather(memory: GuestMemory, segments: readonly ChainSegment[], offset: number, dst: Uint8Array): number {
  let done = 0;
  for (const s of segments) {
    if (done === dst.length) break;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    const n = Math.min(s.len - offset, dst.length - done);
    // read(), not view(): a guest buffer may cross from one host RAM chunk into the next.
    memory.read(s.addr + offset, dst.subarray(done, done + n));
    done += n;
    offset = 0;
  }
  return done;
}

/** Copies `src` into the segments starting `offset` bytes into them; returns how many bytes were written. */
export function scatter(memory: GuestMemory, segments: readonly ChainSegment[], offset: number, src: Uint8Array): number {
  let done = 0;
  for (const s of segments) {
    if (done === src.length) break;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    const n = Math.min(s.len - offset, src.length - done);
    memory.write(s.addr + offset, src.subarray(done, done + n));
    done += n;
    offset = 0;
  }
  return done;
}

/** The sub-range [offset, offset+length) of a segment list, as segments. */
export function sliceSegments(segments: readonly ChainSegment[], offset: number, length: number): ChainSegment[] {
  const out: ChainSegment[] = [];
  for (const s of segments) {
    if (length <= 0) break;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    const n = Math.min(s.len - offset, length);
    out.push({ addr: s.addr + offset, len: n });
    length -= n;
    offset = 0;
  }
  return out;
}
