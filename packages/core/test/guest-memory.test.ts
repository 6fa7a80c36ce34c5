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
