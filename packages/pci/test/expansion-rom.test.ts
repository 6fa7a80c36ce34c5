import { ConfigurationError } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { romBarSize, withExpansionRom } from "../src/index.js";
import { makeRig, TestFunction } from "./helpers.js";

/** withExpansionRom: a ROM BAR in front of any function (the cli's `--device TYPE,rom=PATH`). */
describe("withExpansionRom", () => {
  const image = new Uint8Array(5000).map((_, i) => (i * 7) & 0xff);
  image[0] = 0x55;
  image[1] = 0xaa;

  function setup() {
    const rig = makeRig();
    const inner = new TestFunction({ bars: [{ index: 0, kind: "mem32", size: 0x1000 }] });
    const device = withExpansionRom(inner, image);
    const at = rig.bus.attach(device);
    const read = (offset: number, size: 1 | 2 | 4 = 4) => rig.bus.configRead(at, offset, size);
    const write = (offset: number, size: 1 | 2 | 4, value: number) => rig.bus.configWrite(at, offset, size, value);
    return { rig, inner, device, read, write };
  }

  it("rounds the BAR up to a power of two of at least 2 KiB and refuses an empty or over-16-MiB image", () => {
    expect([1, 2048, 2049, 5000, 65536].map(romBarSize)).toEqual([2048, 2048, 4096, 8192, 65536]);
    expect(() => withExpansionRom(new TestFunction(), new Uint8Array(0))).toThrow(ConfigurationError);
    expect(() => withExpansionRom(new TestFunction(), new Uint8Array(16 * 2 ** 20 + 1))).toThrow(/more than 16 MiB/);
  });

  it("gives the bus a ROM of the image's BAR size and leaves every other property and config register to the device", () => {
    const { inner, device, read } = setup();
    expect(device.rom).toEqual({ size: 8192, bytes: image });
    expect(device.name).toBe(inner.name);
    expect(read(0x00)).toBe(0x1041_1af4);
    expect(read(0x10)).toBe(inner.configRead(0x10, 4));
    expect((inner as { rom?: unknown }).rom).toBeUndefined();
  });

  it("sizes: address bits down to 8 KiB are writable, the enable bit sticks, reserved bits 10:1 read 0; byte writes merge", () => {
    const { read, write } = setup();
    const assigned = read(0x30);
    expect(assigned & 0x1fff).toBe(0); // placed by the bus, aligned, disabled
    write(0x30, 4, 0xffff_fffe);
    expect(read(0x30)).toBe(0xffff_e000);
    write(0x30, 4, 0xffff_ffff);
    expect(read(0x30)).toBe(0xffff_e001);
    write(0x30, 4, assigned);
    write(0x30, 1, 0x01);
    expect(read(0x30)).toBe((assigned | 1) >>> 0);
    expect(read(0x32, 2)).toBe(assigned >>> 16);
  });

  it("serves the image through the mapped window only while enabled and memory decoding is on; writes change nothing", () => {
    const { rig, read, write } = setup();
    const at = read(0x30);
    expect(rig.mmio.read(at, 2)).toBe(0xffff); // disabled: nobody decodes it
    write(0x30, 4, at | 1);
    expect(rig.mmio.read(at, 2)).toBe(0xaa55);
    expect(rig.mmio.read(at + 4096, 4)).toBe(new DataView(image.buffer).getUint32(4096, true));
    expect(rig.mmio.read(at + 5000, 4)).toBe(0); // past the image, inside the 8 KiB BAR
    rig.mmio.write(at, 4, 0);
    expect(rig.mmio.read(at, 2)).toBe(0xaa55);
    write(0x04, 2, read(0x04, 2) & ~0x2); // memory decoding off
    expect(rig.mmio.read(at, 2)).toBe(0xffff);
    write(0x04, 2, read(0x04, 2) | 0x2);
    write(0x30, 4, at); // enable bit off
    expect(rig.mmio.read(at, 2)).toBe(0xffff);
  });
});
