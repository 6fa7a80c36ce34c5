import { describe, expect, it } from "vitest";
import { SplitQueue } from "../src/virtqueue/split-ring.js";
import { gather, scatter, sliceSegments } from "../src/virtqueue/descriptor-chain.js";
import { VirtqueueError } from "../src/virtqueue/errors.js";
import { Allocator, DriverRing, makeMemory, RAM_BASE } from "./driver.js";

function setup(size = 8, options = { eventIdx: false, indirect: true }) {
  const mem = makeMemory();
  const alloc = new Allocator(RAM_BASE);
  const ring = new DriverRing(mem, size, alloc);
  const q = new SplitQueue(0, size, mem);
  q.desc = ring.desc;
  q.driver = ring.avail;
  q.device = ring.used;
  q.start(options);
  return { mem, alloc, ring, q };
}

describe("split virtqueue", () => {
  it("pops chains in avail order with readable then writable segments, and pushes used elements", () => {
    const { alloc, ring, q } = setup();
    const a = alloc.alloc(32);
    const b = alloc.alloc(64);
    const head = ring.post([{ addr: a, len: 32 }, { addr: b, len: 64, write: true }]);
    const chain = q.pop()!;
    expect(chain.head).toBe(head);
    expect(chain.readable).toEqual([{ addr: a, len: 32 }]);
    expect(chain.writable).toEqual([{ addr: b, len: 64 }]);
    expect(chain.readableBytes).toBe(32);
    expect(chain.writableBytes).toBe(64);
    expect(chain.tableEntries).toBe(2);
    expect(q.pop()).toBeUndefined();
    q.push(chain.head, 10);
    expect(ring.takeUsed()).toEqual([{ id: head, len: 10 }]);
  });

  it("follows indirect tables when negotiated and refuses them otherwise", () => {
    const { alloc, ring, q, mem } = setup();
    const table = alloc.alloc(48);
    const bufs = [
      { addr: alloc.alloc(16), len: 16 },
      { addr: alloc.alloc(512), len: 512, write: true },
      { addr: alloc.alloc(1), len: 1, write: true },
    ];
    ring.postIndirect(bufs, table);
    const chain = q.pop()!;
    expect(chain.readable.length).toBe(1);
    expect(chain.writable.map((s) => s.len)).toEqual([512, 1]);
    expect(chain.tableEntries).toBe(1); // the indirect descriptor; its table is the driver's own memory

    const q2 = new SplitQueue(0, 8, mem);
    Object.assign(q2, { desc: ring.desc, driver: ring.avail, device: ring.used });
    q2.start({ eventIdx: false, indirect: false });
    expect(() => q2.pop()).toThrow(/indirect descriptor without/);
  });

  it.each([
    ["a descriptor loop", (r: DriverRing) => { r.writeDesc(0, RAM_BASE, 4, 1, 1); r.writeDesc(1, RAM_BASE, 4, 1, 0); r.publish(0); }, /longer than 8/],
    ["a next index outside the table", (r: DriverRing) => { r.writeDesc(0, RAM_BASE, 4, 1, 200); r.publish(0); }, /index 200 outside/],
    ["a head outside the table", (r: DriverRing) => r.publish(9), /index 9 outside/],
    ["readable after writable", (r: DriverRing) => { r.writeDesc(0, RAM_BASE, 4, 3, 1); r.writeDesc(1, RAM_BASE, 4, 0, 0); r.publish(0); }, /readable descriptor after/],
    ["an indirect table with a bad length", (r: DriverRing) => { r.writeDesc(0, RAM_BASE + 0x8000, 20, 4, 0); r.publish(0); }, /not a positive multiple of 16/],
    ["an empty indirect table", (r: DriverRing) => { r.writeDesc(0, RAM_BASE + 0x8000, 0, 4, 0); r.publish(0); }, /not a positive multiple/],
    ["an indirect descriptor with NEXT", (r: DriverRing) => { r.writeDesc(0, RAM_BASE + 0x8000, 16, 5, 1); r.publish(0); }, /with NEXT/],
    ["an indirect table outside RAM", (r: DriverRing) => { r.writeDesc(0, 0x4000_0000, 32, 4, 0); r.publish(0); }, /outside RAM/],
    ["a chain over the byte cap", (r: DriverRing) => { r.writeDesc(0, RAM_BASE, 0xffff_ffff, 1, 1); r.writeDesc(1, RAM_BASE, 2, 0, 0); r.publish(0); }, /more than/],
    ["an avail index that jumps past the queue size", (r: DriverRing) => r.setAvailIdx(9), /ahead of the device/],
    ["a buffer address of 2^53", (r: DriverRing) => { r.writeDesc(0, 2 ** 53, 16, 0, 0); r.publish(0); }, /buffer address out of range/],
    ["a buffer address near 2^64", (r: DriverRing) => { r.writeDesc(0, 0, 16, 0, 0); r.mem.writeU64(r.desc, (1n << 64n) - 1n); r.publish(0); }, /buffer address out of range/],
    ["an indirect table address of 2^53", (r: DriverRing) => { r.writeDesc(0, 2 ** 53, 32, 4, 0); r.publish(0); }, /indirect table address out of range/],
  ])("rejects %s with a VirtqueueError", (_name, build, message) => {
    const { ring, q } = setup();
    build(ring);
    let error: unknown;
    try {
      q.pop();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(VirtqueueError);
    expect((error as Error).message).toMatch(message);
  });

  it("keeps a buffer address just under 2^53 exact (the high and low words both count)", () => {
    const { ring, q } = setup();
    ring.writeDesc(0, 2 ** 53 - 4096 + 0x123, 16, 0, 0);
    ring.publish(0);
    expect(q.pop()!.readable).toEqual([{ addr: 2 ** 53 - 4096 + 0x123, len: 16 }]);
  });

  it("rejects nested indirect tables", () => {
    const { ring, q, alloc } = setup();
    const inner = alloc.alloc(16);
    const outer = alloc.alloc(16);
    ring.writeDesc(0, inner, 16, 4, 0, outer);
    ring.writeDesc(0, outer, 16, 4, 0);
    ring.publish(0);
    expect(() => q.pop()).toThrow(/nested indirect/);
  });

  it("counts indirect entries against the queue size", () => {
    const { ring, q, alloc } = setup(4);
    const table = alloc.alloc(16 * 8);
    ring.postIndirect(Array.from({ length: 8 }, () => ({ addr: RAM_BASE, len: 1 })), table);
    expect(() => q.pop()).toThrow(/longer than 4/);
  });

  it("refuses to start with rings outside RAM, misaligned, or a bad size", () => {
    const mem = makeMemory(0x10000);
    const q = new SplitQueue(1, 256, mem);
    q.desc = RAM_BASE + 0xf800; // 256*16 bytes run past the end of RAM
    q.driver = RAM_BASE;
    q.device = RAM_BASE + 0x1000;
    expect(() => q.start({ eventIdx: false, indirect: false })).toThrow(/descriptor table .* outside guest RAM/);
    q.desc = RAM_BASE + 8;
    expect(() => q.start({ eventIdx: false, indirect: false })).toThrow(/misaligned/);
    q.desc = RAM_BASE + 0x2000;
    q.size = 100;
    expect(() => q.start({ eventIdx: false, indirect: false })).toThrow(/not a power of two/);
  });

  it("suppresses interrupts with avail NO_INTERRUPT when EVENT_IDX is off", () => {
    const { ring, q } = setup();
    ring.post([{ addr: RAM_BASE, len: 4, write: true }]);
    q.push(q.pop()!.head, 0);
    expect(q.shouldInterrupt()).toBe(true);
    expect(q.shouldInterrupt()).toBe(false); // nothing new pushed
    ring.setAvailFlags(1);
    ring.post([{ addr: RAM_BASE, len: 4, write: true }]);
    q.push(q.pop()!.head, 0);
    expect(q.shouldInterrupt()).toBe(false);
  });

  it("uses used_event and publishes avail_event with EVENT_IDX", () => {
    const { ring, q } = setup(8, { eventIdx: true, indirect: false });
    for (let i = 0; i < 3; i++) ring.post([{ addr: RAM_BASE, len: 4, write: true }]);
    ring.setUsedEvent(1); // interrupt once the used index passes 1
    q.push(q.pop()!.head, 0); // used idx 1
    expect(ring.availEvent()).toBe(1);
    expect(q.shouldInterrupt()).toBe(false);
    q.push(q.pop()!.head, 0); // used idx 2: crosses used_event
    expect(q.shouldInterrupt()).toBe(true);
    q.push(q.pop()!.head, 0);
    expect(ring.availEvent()).toBe(3);
    expect(q.shouldInterrupt()).toBe(false); // used_event still 1
  });

  it("wraps the 16-bit indices", () => {
    const { ring, q } = setup(4);
    for (let i = 0; i < 70000; i += 1) {
      ring.post([{ addr: RAM_BASE, len: 1 }]);
      const c = q.pop()!;
      q.push(c.head, 0);
    }
    expect(ring.usedIdx()).toBe(70000 & 0xffff);
  });

  it("gathers and scatters across segments", () => {
    const mem = makeMemory();
    const segs = [
      { addr: RAM_BASE, len: 3 },
      { addr: RAM_BASE + 100, len: 5 },
    ];
    expect(scatter(mem, segs, 1, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]))).toBe(7);
    const out = new Uint8Array(8);
    expect(gather(mem, segs, 0, out)).toBe(8);
    expect([...out]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(sliceSegments(segs, 2, 4)).toEqual([
      { addr: RAM_BASE + 2, len: 1 },
      { addr: RAM_BASE + 100, len: 3 },
    ]);
  });
});
