import { describe, expect, it } from "vitest";
import { ConfigSpace, MaskedBytes } from "../src/index.js";
import { naturalChunks } from "../src/config/config-space.js";

describe("MaskedBytes", () => {
  it("writes only writable bits and clears write-1-to-clear bits", () => {
    const m = new MaskedBytes(8);
    m.set(0, 4, 0x1234_f0f0);
    m.mask(0, 4, 0x0000_00ff, 0x0000_f000);
    m.write(0, 4, 0xffff_a0ab);
    // byte 0 takes 0xab; 0xf000 w1c bits written with 0xa000 clear 0xa000 of 0xf000 -> 0x5000; rest read-only
    expect(m.read(0, 4)).toBe(0x1234_50ab);
  });

  it("reads and writes little-endian at every width", () => {
    const m = new MaskedBytes(4);
    m.mask(0, 4, 0xffff_ffff);
    m.write(0, 4, 0xdead_beef);
    expect(m.read(0, 1)).toBe(0xef);
    expect(m.read(2, 2)).toBe(0xdead);
    m.write(1, 1, 0x00);
    expect(m.read(0, 4)).toBe(0xdead_00ef);
  });
});

describe("ConfigSpace overlays", () => {
  it("routes capability bodies to their object, calls live handlers, keeps header bytes in the file", () => {
    const space = new ConfigSpace(256);
    const body = new Uint8Array([1, 2, 3, 4, 5, 6]);
    const writable = new Uint8Array([0, 0xff, 0, 0, 0xff, 0]);
    const seen: string[] = [];
    space.file.set(0x40, 2, 0x0009);
    space.place(0x42, {
      body,
      writable,
      onRead: (o, s) => {
        seen.push(`r${o}/${s}`);
        body[0] = 0x77;
      },
      onWrite: (o, s, v) => seen.push(`w${o}/${s}=${v.toString(16)}`),
    });
    expect(space.read(0x40, 4)).toBe(0x0277_0009);
    expect(seen).toEqual(["r0/2"]);
    space.write(0x44, 4, 0xaabb_ccdd);
    expect(Array.from(body)).toEqual([0x77, 2, 3, 4, 0xbb, 6]);
    expect(seen.slice(1)).toEqual(["w2/4=aabbccdd"]);
  });

  it("splits odd pieces into natural chunks", () => {
    expect(naturalChunks(0x43, 3)).toEqual([
      [0x43, 1],
      [0x44, 2],
    ]);
    expect(naturalChunks(0x40, 4)).toEqual([[0x40, 4]]);
  });
});
