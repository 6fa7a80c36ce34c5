// A simulated virtio driver for tests: lays out split rings in a GuestMemory and posts chains like a guest would.
import { GuestMemory } from "@vmm/core";

export interface Buf {
  addr: number;
  len: number;
  write?: boolean;
}

export const RAM_BASE = 0x10000;

export function makeMemory(size = 1 << 20, gpa = RAM_BASE): GuestMemory {
  return new GuestMemory([{ gpa, bytes: new Uint8Array(size) }]);
}

/**
 * RAM from `gpa` as adjacent regions of `chunk` bytes, the way the host hands over RAM above 4 GiB (one
 * ArrayBuffer per chunk of at most 4 GiB), so tests can put guest buffers across a chunk boundary.
 */
export function makeChunkedMemory(size: number, chunk: number, gpa = RAM_BASE): { memory: GuestMemory; chunks: Uint8Array[] } {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < size; at += chunk) chunks.push(new Uint8Array(Math.min(chunk, size - at)));
  return { memory: new GuestMemory(chunks.map((bytes, i) => ({ gpa: gpa + i * chunk, bytes }))), chunks };
}

/** A bump allocator over guest RAM. */
export class Allocator {
  constructor(private next: number) {}
  alloc(len: number, align = 16): number {
    this.next = Math.ceil(this.next / align) * align;
    const at = this.next;
    this.next += len;
    return at;
  }
}

export class DriverRing {
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
  private freeDesc = 0;
  private availIdx = 0;
  private seenUsed = 0;

  constructor(
    readonly mem: GuestMemory,
    readonly size: number,
    alloc: Allocator | { desc: number; avail: number; used: number },
  ) {
    if (alloc instanceof Allocator) {
      this.desc = alloc.alloc(16 * size, 16);
      this.avail = alloc.alloc(6 + 2 * size, 2);
      this.used = alloc.alloc(6 + 8 * size, 4);
    } else {
      ({ desc: this.desc, avail: this.avail, used: this.used } = alloc);
    }
  }

  writeDesc(i: number, addr: number, len: number, flags: number, next: number, table = this.desc): void {
    const at = table + 16 * i;
    this.mem.writeU64(at, BigInt(addr));
    this.mem.writeU32(at + 8, len);
    this.mem.writeU16(at + 12, flags);
    this.mem.writeU16(at + 14, next);
  }

  /** Posts a chain of direct descriptors; returns its head. */
  post(bufs: Buf[]): number {
    const head = this.freeDesc % this.size;
    bufs.forEach((b, k) => {
      const i = (this.freeDesc + k) % this.size;
      const last = k === bufs.length - 1;
      this.writeDesc(i, b.addr, b.len, (b.write ? 2 : 0) | (last ? 0 : 1), (i + 1) % this.size);
    });
    this.freeDesc += bufs.length;
    this.publish(head);
    return head;
  }

  /** Posts one descriptor pointing to an indirect table at `table` holding `bufs`. */
  postIndirect(bufs: Buf[], table: number): number {
    bufs.forEach((b, k) => this.writeDesc(k, b.addr, b.len, (b.write ? 2 : 0) | (k < bufs.length - 1 ? 1 : 0), k + 1, table));
    const head = this.freeDesc++ % this.size;
    this.writeDesc(head, table, 16 * bufs.length, 4, 0);
    this.publish(head);
    return head;
  }

  publish(head: number): void {
    this.mem.writeU16(this.avail + 4 + 2 * (this.availIdx % this.size), head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.mem.writeU16(this.avail + 2, this.availIdx);
  }

  setAvailIdx(idx: number): void {
    this.availIdx = idx & 0xffff;
    this.mem.writeU16(this.avail + 2, this.availIdx);
  }
  setAvailFlags(flags: number): void {
    this.mem.writeU16(this.avail, flags);
  }
  setUsedEvent(idx: number): void {
    this.mem.writeU16(this.avail + 4 + 2 * this.size, idx);
  }
  availEvent(): number {
    return this.mem.readU16(this.used + 4 + 8 * this.size);
  }
  usedIdx(): number {
    return this.mem.readU16(this.used + 2);
  }
  /** Used elements the device added since the last call. */
  takeUsed(): { id: number; len: number }[] {
    const out: { id: number; len: number }[] = [];
    const idx = this.usedIdx();
    while (this.seenUsed !== idx) {
      const at = this.used + 4 + 8 * (this.seenUsed % this.size);
      out.push({ id: this.mem.readU32(at), len: this.mem.readU32(at + 4) });
      this.seenUsed = (this.seenUsed + 1) & 0xffff;
    }
    return out;
  }
}
