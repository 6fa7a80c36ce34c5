import { describe, expect, it } from "vitest";
import { decodeCf8, decodeEcam } from "../src/index.js";
import { makeRig, TestFunction } from "./helpers.js";

function rig() {
  const r = makeRig();
  r.bus.attach(new TestFunction({ name: "dev1", bars: [{ index: 1, kind: "mem32", size: 0x1000 }] })); // 00:01.0
  r.bus.installConfigPorts();
  r.bus.installEcam(0xe000_0000, 2);
  return r;
}

const cf8 = (bus: number, dev: number, fn: number, reg: number) =>
  (0x8000_0000 | (bus << 16) | (dev << 11) | (fn << 8) | reg) >>> 0;

describe("CF8/CFC", () => {
  it("latches CONFIG_ADDRESS exactly and reads it back", () => {
    const { pio } = rig();
    for (const v of [0x8000_1234, 0x7fff_ffff, 0xffff_ffff, 0]) {
      pio.write(0xcf8, 4, v);
      expect(pio.read(0xcf8, 4)).toBe(v);
    }
  });

  it("accepts only dword accesses to the address latch", () => {
    const { pio, bus } = rig();
    pio.write(0xcf8, 4, 0x7fff_ffff);
    pio.write(0xcfa, 1, 0x55);
    expect(pio.read(0xcf8, 4)).toBe(0x7fff_ffff);
    expect(pio.read(0xcf8, 2)).toBe(0xffff);
    expect(bus.stats.dropped).toBe(2);
  });

  it("decodes bus, device, function and register", () => {
    const { pio } = rig();
    expect(decodeCf8(cf8(3, 17, 5, 0x3c))).toEqual({ enabled: true, bus: 3, device: 17, fn: 5, register: 0x3c });
    pio.write(0xcf8, 4, cf8(0, 1, 0, 0));
    expect(pio.read(0xcfc, 4)).toBe(0x1041_1af4);
    pio.write(0xcf8, 4, cf8(1, 1, 0, 0));
    expect(pio.read(0xcfc, 4)).toBe(0xffff_ffff);
    pio.write(0xcf8, 4, cf8(255, 0, 0, 0));
    expect(pio.read(0xcfc, 4)).toBe(0xffff_ffff);
    pio.write(0xcf8, 4, cf8(0, 1, 1, 0));
    expect(pio.read(0xcfc, 4)).toBe(0xffff_ffff);
    pio.write(0xcf8, 4, cf8(0, 31, 0, 0));
    expect(pio.read(0xcfc, 4)).toBe(0xffff_ffff);
    pio.write(0xcf8, 4, cf8(0, 1, 0, 0x08));
    expect(pio.read(0xcfc, 4)).toBe(0x0200_0001);
  });

  it("ignores the low two bits of the latch and requires the enable bit", () => {
    const { pio, bus } = rig();
    pio.write(0xcf8, 4, cf8(0, 1, 0, 0) | 3);
    expect(pio.read(0xcfc, 4)).toBe(0x1041_1af4);
    pio.write(0xcf8, 4, cf8(0, 1, 0, 0) & 0x7fff_ffff);
    const before = bus.stats.dropped;
    expect(pio.read(0xcfc, 4)).toBe(0xffff_ffff);
    pio.write(0xcfc, 4, 0);
    expect(bus.stats.dropped).toBe(before + 2);
  });

  it("serves naturally aligned 1/2/4-byte data accesses and drops the rest", () => {
    const { pio, bus } = rig();
    pio.write(0xcf8, 4, cf8(0, 1, 0, 0));
    expect(pio.read(0xcfd, 1)).toBe(0x1a);
    expect(pio.read(0xcfe, 2)).toBe(0x1041);
    expect(pio.read(0xcff, 1)).toBe(0x10);
    const before = bus.stats.dropped;
    expect(pio.read(0xcfd, 2)).toBe(0xffff);
    expect(pio.read(0xcfe, 4)).toBe(0xffff_ffff);
    expect(pio.read(0xcfd, 4)).toBe(0xffff_ffff);
    expect(pio.read(0xcff, 2)).toBe(0xffff);
    expect(bus.stats.dropped).toBe(before + 4);
    // byte write to the command register through 0xCFC+0
    pio.write(0xcf8, 4, cf8(0, 1, 0, 0x04));
    pio.write(0xcfc, 1, 0x00);
    expect(pio.read(0xcfc, 2)).toBe(0x0000);
  });

  it("reaches only the first 256 bytes", () => {
    const { pio } = rig();
    pio.write(0xcf8, 4, cf8(0, 1, 0, 0xfc));
    expect(pio.read(0xcfc, 4)).toBe(0);
  });
});

describe("ECAM", () => {
  const base = 0xe000_0000;
  it("decodes bus<<20 | device<<15 | function<<12 | register", () => {
    const { mmio } = rig();
    expect(decodeEcam((1 << 20) | (2 << 15) | (3 << 12) | 0x123)).toEqual({ bus: 1, device: 2, fn: 3, register: 0x123 });
    expect(mmio.read(base + (1 << 15), 4)).toBe(0x1041_1af4);
    expect(mmio.read(base + (1 << 15) + 2, 2)).toBe(0x1041);
    expect(mmio.read(base + (1 << 15) + (1 << 12), 4)).toBe(0xffff_ffff); // fn 1 absent
    expect(mmio.read(base + (1 << 20) + (1 << 15), 4)).toBe(0xffff_ffff); // bus 1 empty
    expect(mmio.read(base, 4)).toBe(0x29c0_8086); // host bridge
  });

  it("drops 8-byte and dword-crossing accesses and counts them", () => {
    const { mmio, bus } = rig();
    const at = base + (1 << 15);
    const before = bus.stats.dropped;
    expect(mmio.read64(at)).toBe(0xffff_ffff_ffff_ffffn);
    mmio.write64(at + 0x14, 0n);
    expect(mmio.read(at + 2, 4)).toBe(0xffff_ffff);
    expect(mmio.read(at + 3, 2)).toBe(0xffff);
    expect(mmio.read(at + 1, 2)).toBe(0xffff);
    mmio.write(at + 0x16, 4, 0);
    expect(bus.stats.dropped).toBe(before + 6);
    expect(bus.configRead({ device: 1 }, 0x14, 4)).toBe(0xd200_0000);
  });

  it("reads extended space as 0 for a conventional function", () => {
    const { mmio } = rig();
    expect(mmio.read(base + (1 << 15) + 0x100, 4)).toBe(0);
    expect(mmio.read(base + (1 << 15) + 0xffc, 4)).toBe(0);
  });

  it("rejects an unaligned ECAM base", () => {
    const r = makeRig();
    expect(() => r.bus.installEcam(0xe008_0000)).toThrow(/1 MiB aligned/);
  });

  it("traces transactions, including dropped ones", () => {
    const { bus, mmio } = rig();
    const events: string[] = [];
    bus.trace = (e) => events.push(`${e.via} ${e.write ? "w" : "r"} ${e.device}.${e.function} +${e.offset}/${e.size}${e.dropped ? " dropped" : ""}`);
    mmio.read(base + (1 << 15), 4);
    mmio.read(base + (1 << 15) + 1, 2);
    expect(events).toEqual(["ecam r 1.0 +0/4", "ecam r 1.0 +1/2 dropped"]);
  });
});
