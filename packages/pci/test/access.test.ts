import { describe, expect, it } from "vitest";
import { decodeEcam } from "../src/access/ecam.js";
import { decodeCf8 } from "../src/access/cf8.js";
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
  it("latches CONFIG_ADDRESS and reads it back with reserved bits 30:24 and 1:0 as 0", () => {
    const { pio } = rig();
    for (const [v, back] of [
      [0x8000_1234, 0x8000_1234],
      [0x7fff_ffff, 0x00ff_fffc],
      [0xffff_ffff, 0x80ff_fffc],
      [0x8000_0803, 0x8000_0800],
      [0x0100_0000, 0],
      [0, 0],
    ]) {
      pio.write(0xcf8, 4, v!);
      expect(pio.read(0xcf8, 4)).toBe(back);
    }
  });

  it("accepts only dword accesses to the address latch", () => {
    const { pio, bus } = rig();
    pio.write(0xcf8, 4, 0x7fff_fffc);
    pio.write(0xcfa, 1, 0x55);
    expect(pio.read(0xcf8, 4)).toBe(0x00ff_fffc);
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

  it("serves 1/2/4-byte data accesses inside the dword and drops the ones that cross it", () => {
    const { pio, bus } = rig();
    pio.write(0xcf8, 4, cf8(0, 1, 0, 0));
    expect(pio.read(0xcfd, 1)).toBe(0x1a);
    expect(pio.read(0xcfe, 2)).toBe(0x1041);
    expect(pio.read(0xcff, 1)).toBe(0x10);
    // inw 0xCFD: bytes 1-2, the vendor ID's high byte and the device ID's low byte
    expect(pio.read(0xcfd, 2)).toBe(0x411a);
    const before = bus.stats.dropped;
    expect(pio.read(0xcfe, 4)).toBe(0xffff_ffff);
    expect(pio.read(0xcfd, 4)).toBe(0xffff_ffff);
    expect(pio.read(0xcff, 2)).toBe(0xffff);
    pio.write(0xcf8, 4, cf8(0, 1, 0, 0x04));
    pio.write(0xcff, 2, 0xffff); // would reach 0x07-0x08
    expect(bus.stats.dropped).toBe(before + 4);
    // byte write to the command register through 0xCFC+0
    pio.write(0xcfc, 1, 0x00);
    expect(pio.read(0xcfc, 2)).toBe(0x0000);
    // outw 0xCFD: command high byte and status low byte, each through its own mask
    pio.write(0xcfd, 2, 0xffff);
    expect(pio.read(0xcfc, 4)).toBe(0x0000_0500);
  });

  it("serves a 2-byte access at offset 1 of a dword whose halves are two 16-bit registers", () => {
    const { pio } = rig();
    pio.write(0xcf8, 4, cf8(0, 1, 0, 0x2c)); // subsystem vendor (0x2c) and subsystem (0x2e), both 0
    expect(pio.read(0xcfd, 2)).toBe(0);
    pio.write(0xcf8, 4, cf8(0, 1, 0, 0x14)); // BAR1: mem32, 4 KiB
    const bar = pio.read(0xcfc, 4);
    pio.write(0xcfd, 2, 0xffff); // BAR bits 23:8 through a 2-byte write at offset 1
    expect(pio.read(0xcfc, 4)).toBe(((bar & 0xff00_0000) | 0x00ff_f000) >>> 0);
    expect(pio.read(0xcfd, 2)).toBe(0xfff0);
    pio.write(0xcfd, 2, (bar >>> 8) & 0xffff);
    expect(pio.read(0xcfc, 4)).toBe(bar);
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
    expect(mmio.read(at + 0x17, 2)).toBe(0xffff);
    mmio.write(at + 0x16, 4, 0);
    mmio.write(at + 0x13, 2, 0);
    expect(bus.stats.dropped).toBe(before + 7);
    expect(bus.configRead({ device: 1 }, 0x14, 4)).toBe(0xd200_0000);
    expect(bus.configRead({ device: 1 }, 0x10, 4)).toBe(0);
  });

  it("serves 1- and 2-byte accesses anywhere inside a dword (any byte-enable pattern of one dword)", () => {
    const { mmio, bus } = rig();
    const at = base + (1 << 15);
    const before = bus.stats.dropped;
    expect(mmio.read(at + 1, 2)).toBe(0x411a);
    expect(mmio.read(at + 0x0d, 2)).toBe(0); // latency timer and header type
    mmio.write(at + 0x15, 2, 0x1234); // BAR1 bits 23:8
    expect(bus.configRead({ device: 1 }, 0x14, 4)).toBe(0xd212_3000);
    expect(mmio.read(at + 0x15, 2)).toBe(0x1230);
    expect(bus.configRead({ device: 1 }, 0x17, 1)).toBe(0xd2);
    expect(bus.stats.dropped).toBe(before);
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
    mmio.read(base + (1 << 15) + 3, 2);
    expect(events).toEqual(["ecam r 1.0 +0/4", "ecam r 1.0 +1/2", "ecam r 1.0 +3/2 dropped"]);
  });
});
