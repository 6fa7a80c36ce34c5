import fc from "fast-check";
import { GuestMemory, GuestMemoryError } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { SplitQueue } from "../src/virtqueue/split-ring.js";
import { VirtqueueError } from "../src/virtqueue/errors.js";

const BASE = 0x1000;
const RAM = 0x4000;

/** GuestMemory that records how many accesses the parser made, to prove each pop does bounded work. */
class CountingMemory extends GuestMemory {
  accesses = 0;
  override readU16(gpa: number): number {
    this.accesses++;
    return super.readU16(gpa);
  }
  override readU32(gpa: number): number {
    this.accesses++;
    return super.readU32(gpa);
  }
  override readU64(gpa: number): bigint {
    this.accesses++;
    return super.readU64(gpa);
  }
}

describe("virtqueue parser under random rings (property)", () => {
  it("never throws anything but VirtqueueError, never escapes RAM, always terminates", () => {
    // Descriptors biased towards small indices, addresses near RAM and the three flags, so chains get deep.
    const descriptor = fc.record({
      addr: fc.oneof(fc.integer({ min: 0, max: BASE + RAM + 64 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
      len: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 0xffff_ffff })),
      flags: fc.integer({ min: 0, max: 7 }),
      next: fc.oneof(fc.integer({ min: 0, max: 16 }), fc.integer({ min: 0, max: 0xffff })),
    });
    fc.assert(
      fc.property(
        fc.constantFrom(1, 2, 4, 8, 16),
        fc.array(descriptor, { minLength: 16, maxLength: 16 }),
        fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 18, maxLength: 18 }),
        fc.boolean(),
        fc.boolean(),
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 255 }), table: fc.array(descriptor, { maxLength: 4 }) }), { maxLength: 3 }),
        (size, descs, avail, indirect, eventIdx, tables) => {
          const bytes = new Uint8Array(RAM);
          const view = new DataView(bytes.buffer);
          const writeDesc = (off: number, d: (typeof descs)[number]) => {
            if (off + 16 > RAM) return;
            view.setBigUint64(off, BigInt.asUintN(64, BigInt(d.addr)), true);
            view.setUint32(off + 8, d.len >>> 0, true);
            view.setUint16(off + 12, d.flags, true);
            view.setUint16(off + 14, d.next, true);
          };
          descs.forEach((d, i) => writeDesc(i * 16, d));
          // Random indirect tables scattered over RAM.
          for (const t of tables) t.table.forEach((d, i) => writeDesc(0x800 + t.at * 16 + i * 16, d));
          avail.forEach((v, i) => view.setUint16(0x400 + 2 * i, v, true));
          const mem = new CountingMemory([{ gpa: BASE, bytes }]);
          const q = new SplitQueue(0, size, mem);
          q.desc = BASE;
          q.driver = BASE + 0x400;
          q.device = BASE + 0x600;
          q.start({ indirect, eventIdx, maxChainBytes: 1 << 20 });
          for (let pops = 0; pops < 40; pops++) {
            mem.accesses = 0;
            let chain;
            try {
              chain = q.pop();
            } catch (e) {
              expect(e).toBeInstanceOf(VirtqueueError);
              expect(e).not.toBeInstanceOf(GuestMemoryError);
              return;
            }
            // Bounded work: a few ring reads plus 4 per descriptor, at most `size` descriptors.
            expect(mem.accesses).toBeLessThanOrEqual(4 + 4 * (size + 1));
            if (!chain) return;
            expect(chain.head).toBeLessThan(size);
            expect(chain.readable.length + chain.writable.length).toBeLessThanOrEqual(size);
            expect(chain.tableEntries).toBeGreaterThanOrEqual(1);
            expect(chain.tableEntries).toBeLessThanOrEqual(size);
            expect(chain.readableBytes + chain.writableBytes).toBeLessThanOrEqual(1 << 20);
            q.push(chain.head, 0);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });
});
