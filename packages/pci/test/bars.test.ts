import { describe, expect, it } from "vitest";
import { ConfigurationError, type PciDevice } from "@vmm/core";
import { makeRig, STANDARD_BARS, TestFunction } from "./helpers.js";

function setup(extra: ConstructorParameters<typeof TestFunction>[0] = {}) {
  const rig = makeRig();
  const fn = new TestFunction({ bars: STANDARD_BARS, ...extra });
  rig.bus.attach(fn);
  const read = (o: number, s = 4) => rig.bus.configRead({ device: 1 }, o, s);
  const write = (o: number, s: number, v: number) => rig.bus.configWrite({ device: 1 }, o, s, v);
  return { rig, fn, read, write };
}

describe("BAR registers", () => {
  it("start at the allocated addresses with their type bits, unimplemented BARs and no ROM read 0", () => {
    const { read } = setup();
    expect(read(0x10)).toBe(0x6200 | 1);
    expect(read(0x14)).toBe(0xd200_0000);
    expect(read(0x18)).toBe(0x0000_000c); // 64-bit prefetchable, low half of 2^36
    expect(read(0x1c)).toBe(0x10);
    expect([0x20, 0x24, 0x30].map((o) => read(o))).toEqual([0, 0, 0]);
  });

  it("size by writing all-ones (no special case) and restore exactly", () => {
    const { read, write } = setup();
    write(0x04, 2, 0);
    const expected = [0xffff_ff01, 0xffff_f000, 0xffff_c00c, 0xffff_ffff, 0, 0];
    for (let i = 0; i < 6; i++) {
      const old = read(0x10 + 4 * i);
      write(0x10 + 4 * i, 4, 0xffff_ffff);
      expect(read(0x10 + 4 * i)).toBe(expected[i]);
      write(0x10 + 4 * i, 4, old);
      expect(read(0x10 + 4 * i)).toBe(old);
    }
  });

  it("mask written addresses to the BAR size", () => {
    const { read, write } = setup();
    write(0x04, 2, 0);
    write(0x10, 4, 0x1234_5678);
    expect(read(0x10)).toBe(0x1234_5601);
    write(0x14, 4, 0x1234_5678);
    expect(read(0x14)).toBe(0x1234_5000);
    write(0x14, 4, 0xffff_fffe);
    expect(read(0x14)).toBe(0xffff_f000);
  });

  it("ignore writes to unimplemented BARs", () => {
    const { read, write } = setup();
    write(0x04, 2, 0x0003);
    write(0x20, 4, 0x5555_5555);
    expect(read(0x20)).toBe(0);
  });

  it("take sub-dword writes in their byte lanes", () => {
    const { read, write } = setup();
    write(0x04, 2, 0);
    write(0x14, 4, 0);
    write(0x14, 2, 0xffff);
    expect(read(0x14)).toBe(0x0000_f000);
    write(0x17, 1, 0xab);
    expect(read(0x14)).toBe(0xab00_f000);
  });

  it("size 64-bit BARs bigger than 4 GiB through the high half", () => {
    const rig = makeRig({ windows: { io: { base: 0x1000, size: 0x1000 }, mem32: { base: 0xc000_0000, size: 0x1000_0000 }, mem64: { base: 2 ** 40, size: 2 ** 40 } } });
    const fn = new TestFunction({ bars: [{ index: 0, kind: "mem64", size: 2 ** 34 }] });
    rig.bus.attach(fn);
    rig.bus.configWrite({ device: 1 }, 0x04, 2, 0);
    rig.bus.configWrite({ device: 1 }, 0x10, 4, 0xffff_ffff);
    rig.bus.configWrite({ device: 1 }, 0x14, 4, 0xffff_ffff);
    expect(rig.bus.configRead({ device: 1 }, 0x10, 4)).toBe(0x4);
    expect(rig.bus.configRead({ device: 1 }, 0x14, 4)).toBe(0xffff_fffc);
  });

  it("fail at registration when a size is not a power of two, naming the device", () => {
    expect(() => new TestFunction({ name: "odd", bars: [{ index: 0, kind: "mem32", size: 0x3000 }] })).toThrow(
      ConfigurationError,
    );
    expect(() => new TestFunction({ name: "odd", bars: [{ index: 0, kind: "mem32", size: 0x3000 }] })).toThrow(
      /odd: BAR0: size 12288 must be a power of two/,
    );
    expect(() => new TestFunction({ name: "tiny", bars: [{ index: 1, kind: "io", size: 2 }] })).toThrow(/tiny: BAR1/);
    expect(() => new TestFunction({ name: "pair", bars: [{ index: 5, kind: "mem64", size: 16 }] })).toThrow(/pair: BAR5/);
    expect(
      () =>
        new TestFunction({
          name: "clash",
          bars: [
            { index: 0, kind: "mem64", size: 16 },
            { index: 1, kind: "mem32", size: 16 },
          ],
        }),
    ).toThrow(/clash: BAR1: register 1 is already used/);
  });

  it("validate foreign PciDevice implementations at attach too", () => {
    const rig = makeRig();
    const foreign: PciDevice = {
      name: "foreign",
      bars: [{ index: 0, kind: "mem32", size: 100 }],
      configRead: () => 0,
      configWrite: () => {},
    };
    expect(() => rig.bus.attach(foreign)).toThrow(/foreign: BAR0: size 100/);
  });
});

describe("expansion ROM BAR", () => {
  const rom = new Uint8Array(3000).map((_, i) => i & 0xff);
  rom[0] = 0x55;
  rom[1] = 0xaa;

  it("sizes to the next power of two and keeps the enable bit", () => {
    const { read, write } = setup({ rom });
    expect(read(0x30)).toBe(0xd200_1000); // after BAR1 in the 32-bit window, disabled
    write(0x30, 4, 0xffff_fffe);
    expect(read(0x30)).toBe(0xffff_f000);
    write(0x30, 4, 0xffff_ffff);
    expect(read(0x30)).toBe(0xffff_f001);
  });

  it("serves contents only when enabled and memory decoding is on", () => {
    const { rig, read, write } = setup({ rom });
    const at = read(0x30);
    expect(rig.mmio.read(at, 2)).toBe(0xffff);
    write(0x30, 4, at | 1);
    expect(rig.mmio.read(at, 2)).toBe(0xaa55);
    expect(rig.mmio.read(at + 2000, 4)).toBe(0xd3d2_d1d0);
    expect(rig.mmio.read(at + 3000, 4)).toBe(0); // past the image, inside the BAR
    rig.mmio.write(at, 4, 0);
    expect(rig.mmio.read(at, 2)).toBe(0xaa55);
    write(0x04, 2, 0x0001);
    expect(rig.mmio.read(at, 2)).toBe(0xffff);
  });

  it("rejects nothing when absent: the ROM BAR reads 0", () => {
    const { read, write } = setup();
    write(0x30, 4, 0xffff_ffff);
    expect(read(0x30)).toBe(0);
  });
});
