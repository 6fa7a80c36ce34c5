import { describe, expect, it } from "vitest";
import { ConfigurationError } from "@vmm/core";
import { HOST_BRIDGE_CLASS, HOST_BRIDGE_DEVICE_ID, HOST_BRIDGE_VENDOR_ID, PciFunction } from "../src/index.js";
import { makeRig, STANDARD_BARS, TestFunction } from "./helpers.js";

function attached() {
  const rig = makeRig();
  const fn = new TestFunction({ bars: STANDARD_BARS, interruptPin: 1, subsystemVendorId: 0x1af4, subsystemId: 0x41 });
  rig.bus.attach(fn);
  const at = { device: 1 };
  const read = (o: number, s: number) => rig.bus.configRead(at, o, s);
  const write = (o: number, s: number, v: number) => rig.bus.configWrite(at, o, s, v);
  return { rig, fn, read, write };
}

describe("type 0 header", () => {
  it("reports identity, class, subsystem and interrupt pin", () => {
    const { read } = attached();
    expect(read(0x00, 4)).toBe(0x1041_1af4);
    expect(read(0x08, 4)).toBe(0x0200_0001);
    expect(read(0x2c, 4)).toBe(0x0041_1af4);
    expect(read(0x3d, 1)).toBe(1);
    expect(read(0x0e, 1)).toBe(0x00);
  });

  it("has a host bridge at 00:00.0 with class 0x060000", () => {
    const { rig } = attached();
    expect(rig.bus.configRead({ device: 0 }, 0, 4)).toBe(((HOST_BRIDGE_DEVICE_ID << 16) | HOST_BRIDGE_VENDOR_ID) >>> 0);
    expect(rig.bus.configRead({ device: 0 }, 0x08, 4) >>> 8).toBe(HOST_BRIDGE_CLASS);
    expect(rig.bus.configRead({ device: 0 }, 0x3d, 1)).toBe(0);
  });

  it("masks the command register to its implemented bits", () => {
    const { read, write } = attached();
    write(0x04, 2, 0xffff);
    expect(read(0x04, 2)).toBe(0x0547);
    write(0x04, 1, 0x07);
    expect(read(0x04, 2)).toBe(0x0507);
    write(0x05, 1, 0xff);
    expect(read(0x04, 2)).toBe(0x0507);
    write(0x05, 1, 0x00);
    expect(read(0x04, 2)).toBe(0x0007);
  });

  it("keeps IDs, status, class, header type, pin and capability pointer read-only", () => {
    const { read, write } = attached();
    const before = [0x00, 0x08, 0x0c, 0x28, 0x2c, 0x34].map((o) => read(o, 4));
    const status = read(0x06, 2);
    for (const o of [0x00, 0x08, 0x28, 0x2c, 0x34]) write(o, 4, 0xffff_ffff);
    write(0x06, 2, 0xffff);
    expect(read(0x06, 2)).toBe(status);
    expect([0x00, 0x08, 0x28, 0x2c, 0x34].map((o) => read(o, 4))).toEqual(before.filter((_, i) => i !== 2));
  });

  it("does not let dword writes leak into read-only bytes (0x0C, 0x3C)", () => {
    const { read, write } = attached();
    write(0x0c, 4, 0xffff_ffff);
    // cache line size and (conventional) latency timer are writable; header type and BIST are not
    expect(read(0x0c, 4)).toBe(0x0000_ffff);
    write(0x3c, 4, 0xaabb_ccdd);
    expect(read(0x3c, 4)).toBe(0x0000_01dd);
    write(0x3d, 1, 0x04);
    expect(read(0x3d, 1)).toBe(1);
  });

  it("clears status error bits by writing 1 (write-1-to-clear)", () => {
    const fn = new TestFunction();
    // set an error bit the way a device model would
    (fn as unknown as { config: { file: { set(o: number, s: number, v: number): void } } }).config.file.set(0x06, 2, 0x2000);
    fn.configWrite(0x06, 2, 0x0000);
    expect(fn.configRead(0x06, 2)).toBe(0x2000);
    fn.configWrite(0x06, 2, 0x2000);
    expect(fn.configRead(0x06, 2)).toBe(0x0000);
  });

  it("hardwires the latency timer to 0 on PCI Express functions", () => {
    const fn = new TestFunction({ express: { type: "endpoint" } });
    fn.configWrite(0x0c, 4, 0xffff_ffff);
    expect(fn.configRead(0x0c, 4)).toBe(0x0000_00ff);
  });

  it("rejects bad identities with a ConfigurationError naming the device", () => {
    expect(() => new TestFunction({ name: "bad", vendorId: 0x10000 })).toThrow(/bad: vendor/);
    expect(() => new TestFunction({ name: "bad", classCode: 2 ** 24 })).toThrow(ConfigurationError);
    expect(
      () => new PciFunction({ name: "pin", vendorId: 1, deviceId: 1, classCode: 0, interruptPin: 5 as 4 }),
    ).toThrow(/pin: the interrupt pin/);
  });
});

describe("multi-function devices", () => {
  it("sets the header's multi-function bit on every function of a device with several", () => {
    const rig = makeRig();
    const f0 = new TestFunction({ name: "f0" });
    rig.bus.attach(f0, { device: 4, function: 0 });
    expect(rig.bus.configRead({ device: 4 }, 0x0e, 1)).toBe(0x00);
    rig.bus.attach(new TestFunction({ name: "f3" }), { device: 4, function: 3 });
    expect(rig.bus.configRead({ device: 4 }, 0x0e, 1)).toBe(0x80);
    expect(rig.bus.configRead({ device: 4 }, 0x0c, 4) >>> 16).toBe(0x0080);
    expect(rig.bus.configRead({ device: 4, function: 3 }, 0x0e, 2)).toBe(0x0080);
    rig.bus.configWrite({ device: 4 }, 0x0d, 1, 0x40); // latency timer, beside it
    expect(rig.bus.configRead({ device: 4 }, 0x0d, 2)).toBe(0x8040); // the bit in the high lane of an odd access
    expect(rig.bus.configRead({ device: 4, function: 1 }, 0x00, 4)).toBe(0xffff_ffff);
    // the guest cannot write it
    rig.bus.configWrite({ device: 4 }, 0x0c, 4, 0);
    expect(rig.bus.configRead({ device: 4 }, 0x0e, 1)).toBe(0x80);
  });

  it("refuses a taken address", () => {
    const rig = makeRig();
    rig.bus.attach(new TestFunction({ name: "a" }), { device: 2 });
    expect(() => rig.bus.attach(new TestFunction({ name: "b" }), { device: 2 })).toThrow(/b: 00:02.0 is taken by a/);
  });
});
