import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigurationError, GuestMemory, GuestMemoryError } from "../src/index.js";

function twoRegions() {
  const low = new Uint8Array(0x1000);
  const high = new Uint8Array(0x1000);
  return { low, high, mem: new GuestMemory([{ gpa: 0x10000, bytes: high }, { gpa: 0, bytes: low }]) };
}

describe("GuestMemory", () => {
  it("translates addresses and reads/writes little-endian values", () => {
    const { low, high, mem } = twoRegions();
    mem.writeU32(0x10, 0xdeadbeef);
    expect([...low.subarray(0x10, 0x14)]).toEqual([0xef, 0xbe, 0xad, 0xde]);
    mem.writeU64(0x10ff8, 0x0102030405060708n);
    expect(high[0xff8]).toBe(0x08);
    expect(mem.readU64(0x10ff8)).toBe(0x0102030405060708n);
    expect(mem.readU16(0x12)).toBe(0xdead);
    mem.writeU8(0x1, 0x1ff);
    expect(mem.readU8(0x1)).toBe(0xff);
    expect(mem.size).toBe(0x2000);
  });

  it("gives live views without copying", () => {
    const { low, mem } = twoRegions();
    const v = mem.view(0x100, 4);
    v[0] = 9;
    expect(low[0x100]).toBe(9);
    const dst = new Uint8Array(4);
    mem.write(0x200, Uint8Array.of(1, 2, 3, 4));
    mem.read(0x200, dst);
    expect([...dst]).toEqual([1, 2, 3, 4]);
  });

  it("raises GuestMemoryError outside RAM, across a hole and on bad addresses, touching nothing", () => {
    const { low, high, mem } = twoRegions();
    const before = [...low, ...high];
    expect(() => mem.readU32(0xffe)).toThrowError(GuestMemoryError); // straddles the end of the low region
    expect(() => mem.writeU32(0xffe, 1)).toThrowError(GuestMemoryError);
    expect(() => mem.view(0x1000, 1)).toThrowError(GuestMemoryError); // the hole
    expect(() => mem.write(0x10ff0, new Uint8Array(0x20))).toThrowError(GuestMemoryError);
    expect(() => mem.readU8(-1)).toThrowError(GuestMemoryError);
    expect(() => mem.readU8(2 ** 60)).toThrowError(GuestMemoryError);
    expect(() => mem.view(0, -1)).toThrowError(GuestMemoryError);
    expect([...low, ...high]).toEqual(before);
    expect(mem.contains(0xffc, 4)).toBe(true);
    expect(mem.contains(0xffd, 4)).toBe(false);
  });

  it("refuses overlapping regions", () => {
    expect(() => new GuestMemory([{ gpa: 0, bytes: new Uint8Array(16) }, { gpa: 8, bytes: new Uint8Array(16) }])).toThrowError(ConfigurationError);
  });

  it("an access succeeds exactly when it lies inside one region (property)", () => {
    const { mem } = twoRegions();
    fc.assert(
      fc.property(fc.integer({ min: -16, max: 0x12000 }), fc.integer({ min: 0, max: 0x40 }), (gpa, len) => {
        const inside = (gpa >= 0 && gpa + len <= 0x1000) || (gpa >= 0x10000 && gpa + len <= 0x11000);
        if (inside) expect(mem.view(gpa, len).length).toBe(len);
        else expect(() => mem.view(gpa, len)).toThrowError(GuestMemoryError);
      }),
    );
  });
});

/** What the host gives for big RAM: adjacent chunks (here 0x1000 bytes at 0x1000, 0x2000, 0x3000), then a hole and one more. */
function adjacentRegions() {
  const chunks = [new Uint8Array(0x1000), new Uint8Array(0x1000), new Uint8Array(0x1000)];
  const far = new Uint8Array(0x1000);
  const mem = new GuestMemory([{ gpa: 0x3000, bytes: chunks[2]! }, { gpa: 0x1000, bytes: chunks[0]! }, { gpa: 0x5000, bytes: far }, { gpa: 0x2000, bytes: chunks[1]! }]);
  const snapshot = () => [...chunks.flatMap((c) => [...c]), ...far];
  return { chunks, far, mem, snapshot };
}

describe("GuestMemory across adjacent regions", () => {
  it("reads and writes byte ranges that cross from one region into the next, and through a whole one", () => {
    const { chunks, mem } = adjacentRegions();
    const src = Uint8Array.from({ length: 0x20 }, (_, i) => i + 1);
    mem.write(0x1ff0, src);
    expect([...chunks[0]!.subarray(0xff0)]).toEqual([...src.subarray(0, 0x10)]);
    expect([...chunks[1]!.subarray(0, 0x10)]).toEqual([...src.subarray(0x10)]);
    const back = new Uint8Array(0x20);
    mem.read(0x1ff0, back);
    expect([...back]).toEqual([...src]);

    const big = Uint8Array.from({ length: 0x1100 }, (_, i) => (i * 7) & 0xff);
    mem.write(0x1f80, big); // 0x80 in the first, all 0x1000 of the second, 0x80 in the third
    expect(chunks[1]![0]).toBe(big[0x80]);
    expect(chunks[2]![0x7f]).toBe(big[0x10ff]);
    const all = new Uint8Array(0x1100);
    mem.read(0x1f80, all);
    expect([...all]).toEqual([...big]);
    expect(mem.contains(0x1000, 0x3000)).toBe(true);
    expect(mem.contains(0x1ffc, 8)).toBe(true);
  });

  it("reads and writes u16/u32/u64 across a boundary at every split, little-endian", () => {
    const { chunks, mem } = adjacentRegions();
    for (const [size, value] of [
      [2, 0xbeefn],
      [4, 0xdeadbeefn],
      [8, 0x0102030405060708n],
    ] as const) {
      for (let before = 1; before < size; before++) {
        const at = 0x3000 - before;
        chunks[1]!.fill(0);
        chunks[2]!.fill(0);
        if (size === 2) mem.writeU16(at, Number(value));
        if (size === 4) mem.writeU32(at, Number(value));
        if (size === 8) mem.writeU64(at, value);
        const bytes = [...chunks[1]!.subarray(0x1000 - before), ...chunks[2]!.subarray(0, size - before)];
        expect(bytes).toEqual(Array.from({ length: size }, (_, i) => Number((value >> BigInt(8 * i)) & 0xffn)));
        const read = size === 2 ? BigInt(mem.readU16(at)) : size === 4 ? BigInt(mem.readU32(at)) : mem.readU64(at);
        expect(read).toBe(value);
      }
    }
    mem.writeU32(0x2ffe, -1); // unsigned like the single-region path
    expect(mem.readU32(0x2ffe)).toBe(0xffff_ffff);
    mem.writeU64(0x2ffc, -1n);
    expect(mem.readU64(0x2ffc)).toBe(0xffff_ffff_ffff_ffffn);
  });

  it("segments gives live views, one per region touched, where view refuses the crossing", () => {
    const { chunks, mem } = adjacentRegions();
    const parts = mem.segments(0x1ff8, 0x1010);
    expect(parts.map((p) => p.length)).toEqual([8, 0x1000, 8]);
    expect(parts.map((p) => p.buffer)).toEqual(chunks.map((c) => c.buffer)); // no copies
    parts[0]![7] = 0x11;
    parts[2]![0] = 0x22;
    expect(chunks[0]![0xfff]).toBe(0x11);
    expect(chunks[2]![0]).toBe(0x22);
    const one = mem.segments(0x2010, 4); // inside one region: one view
    expect(one.length).toBe(1);
    one[0]![0] = 0x33;
    expect(chunks[1]![0x10]).toBe(0x33);
    expect(mem.segments(0x2000, 0).map((p) => p.length)).toEqual([0]);
    expect(() => mem.view(0x1ffc, 8)).toThrowError(GuestMemoryError);
    expect(mem.view(0x1ffc, 4).length).toBe(4);
  });

  it("an access reaching a hole or past RAM still throws and touches nothing, while the adjacent crossing works", () => {
    const { chunks, mem, snapshot } = adjacentRegions();
    mem.writeU32(0x1ffe, 0x01020304);
    expect(mem.readU32(0x1ffe)).toBe(0x01020304);
    const before = snapshot();
    expect(() => mem.write(0x3ff0, new Uint8Array(0x20).fill(9))).toThrowError(GuestMemoryError); // into the hole
    expect(() => mem.write(0x1ff0, new Uint8Array(0x3000).fill(9))).toThrowError(GuestMemoryError); // through all three into the hole
    expect(() => mem.write(0xff0, new Uint8Array(0x20).fill(9))).toThrowError(GuestMemoryError); // from below RAM
    expect(() => mem.writeU16(0x3fff, 0xffff)).toThrowError(GuestMemoryError);
    expect(() => mem.writeU32(0x3ffe, 0xffff_ffff)).toThrowError(GuestMemoryError);
    expect(() => mem.writeU64(0x3ffc, -1n)).toThrowError(GuestMemoryError);
    expect(() => mem.writeU64(0x5ffc, -1n)).toThrowError(GuestMemoryError); // past the end of RAM
    expect(() => mem.readU64(0x3ffc)).toThrowError(GuestMemoryError);
    expect(() => mem.segments(0x3ff0, 0x20)).toThrowError(GuestMemoryError);
    expect(() => mem.segments(0x1ff0, -1)).toThrowError(GuestMemoryError);
    expect(() => mem.segments(0x1ff0 + 0.5, 0x20)).toThrowError(GuestMemoryError);
    const dst = new Uint8Array(0x20).fill(7);
    expect(() => mem.read(0x3ff0, dst)).toThrowError(GuestMemoryError);
    expect([...dst]).toEqual(new Array(0x20).fill(7));
    expect(snapshot()).toEqual(before);
    expect(mem.contains(0x3ffc, 8)).toBe(false);
    expect(mem.contains(0x1000, 0x3001)).toBe(false);
    expect(mem.contains(0x2ffc, 8)).toBe(true);
  });

  it("an access succeeds exactly when it lies inside a run of adjacent regions (property)", () => {
    const { mem } = adjacentRegions();
    fc.assert(
      fc.property(fc.integer({ min: 0xff0, max: 0x6010 }), fc.integer({ min: 0, max: 0x40 }), (gpa, len) => {
        const inside = (gpa >= 0x1000 && gpa + len <= 0x4000) || (gpa >= 0x5000 && gpa + len <= 0x6000);
        expect(mem.contains(gpa, len)).toBe(inside);
        const bytes = Uint8Array.from({ length: len }, (_, i) => (gpa + i) & 0xff);
        if (inside) {
          mem.write(gpa, bytes);
          const back = new Uint8Array(len);
          mem.read(gpa, back);
          expect([...back]).toEqual([...bytes]);
          expect(mem.segments(gpa, len).reduce((n, p) => n + p.length, 0)).toBe(len);
        } else {
          expect(() => mem.write(gpa, bytes)).toThrowError(GuestMemoryError);
          expect(() => mem.segments(gpa, len)).toThrowError(GuestMemoryError);
        }
      }),
    );
  });
});
