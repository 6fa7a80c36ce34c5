import { describe, expect, it } from "vitest";
import type { IoHandler, PciDevice, SmallAccessSize } from "@vmm/core";
import { MsiCapability, PciFunction } from "../src/index.js";
import { makeRig, TestFunction } from "./helpers.js";

/** Records what its configWritten hook sees. */
class Hooked extends TestFunction {
  readonly seen: Array<[number, number, number]> = [];
  protected override configWritten(offset: number, size: SmallAccessSize, value: number): void {
    this.seen.push([offset, size, value]);
  }
}

const inWidth = (v: number, size: number) => Number.isInteger(v) && v >= 0 && v < 2 ** (8 * size);

describe("register values stay unsigned of the access width", () => {
  it("a machine reset rewrites the ROM BAR (above 2 GiB) as an unsigned value", () => {
    const rig = makeRig();
    const fn = new Hooked({ rom: new Uint8Array(2048), bars: [{ index: 0, kind: "mem32", size: 0x1000 }] });
    rig.bus.attach(fn);
    fn.seen.length = 0;
    rig.bus.reset();
    const rom = fn.seen.filter(([o]) => o === 0x30);
    expect(rom.length).toBe(1);
    expect(rom[0]![2]).toBeGreaterThanOrEqual(0xd200_0000);
    for (const [, size, v] of fn.seen) expect(inWidth(v, size), `0x${v.toString(16)}`).toBe(true);
  });

  it("config writes reach the device as the unsigned value of their width, whatever the caller passed", () => {
    const rig = makeRig();
    const fn = new Hooked();
    rig.bus.attach(fn);
    fn.seen.length = 0;
    rig.bus.configWrite({ device: 1 }, 0x3c, 1, 0x8000_0011);
    rig.bus.configWrite({ device: 1 }, 0x0c, 2, -2); // an int32 0xfffffffe
    rig.bus.configWrite({ device: 1 }, 0x10, 4, 0x8000_0000 | 0); // negative
    fn.configWrite(0x3c, 1, -1);
    expect(fn.seen).toEqual([
      [0x3c, 1, 0x11],
      [0x0c, 2, 0xfffe],
      [0x10, 4, 0x8000_0000],
      [0x3c, 1, 0xff],
    ]);
    expect(rig.bus.configRead({ device: 1 }, 0x0c, 2)).toBe(0xfffe);
  });

  it("reads of a foreign device that answers with int32 or wide values come back in the access width", () => {
    const rig = makeRig();
    const dev: PciDevice = {
      name: "foreign",
      bars: [],
      configRead: (offset, size) => (offset === 0 ? 0x1234_5678 | 0x8000_0000 : size === 2 ? -1 : 0x1ff),
      configWrite: () => {},
    };
    rig.bus.attach(dev);
    expect(rig.bus.configRead({ device: 1 }, 0x00, 4)).toBe(0x9234_5678);
    expect(rig.bus.configRead({ device: 1 }, 0x04, 2)).toBe(0xffff);
    expect(rig.bus.configRead({ device: 1 }, 0x09, 1)).toBe(0xff);
  });

  it("BAR handlers see unsigned values and guests read unsigned ones", () => {
    const rig = makeRig();
    const writes: Array<[number, number]> = [];
    const qwords: bigint[] = [];
    const handler: IoHandler = {
      read: (o) => (o === 0 ? 0x8000_0000 | 1 : -1), // a device that builds values with `|`
      write: (_o, s, v) => void writes.push([s, v]),
      read64: () => -1n,
      write64: (_o, v) => void qwords.push(v),
    };
    const fn = new PciFunction({ name: "signed", vendorId: 1, deviceId: 2, classCode: 0, bars: [{ index: 1, kind: "mem32", size: 0x1000 }], barHandlers: { 1: handler } });
    rig.bus.attach(fn);
    const bar = rig.bus.configRead({ device: 1 }, 0x14, 4);
    expect(rig.mmio.read(bar, 4)).toBe(0x8000_0001);
    expect(rig.mmio.read(bar + 4, 2)).toBe(0xffff);
    expect(rig.mmio.read64(bar + 8)).toBe(0xffff_ffff_ffff_ffffn);
    rig.mmio.write(bar, 4, 0x8000_0000 | 0);
    rig.mmio.write(bar, 2, -1);
    rig.mmio.write64(bar + 8, -2n);
    expect(writes).toEqual([
      [4, 0x8000_0000],
      [2, 0xffff],
    ]);
    expect(qwords).toEqual([0xffff_ffff_ffff_fffen]);
  });
});

describe("MSI vector 31 (bit 31 of the mask and pending registers)", () => {
  it("masks, pends and delivers vector 31 with unsigned register values", () => {
    const rig = makeRig();
    const fn = new TestFunction();
    const msi = new MsiCapability({ vectors: 32, perVectorMask: true });
    const at = fn.addCapability(msi);
    rig.bus.attach(fn);
    const w = (o: number, s: number, v: number) => rig.bus.configWrite({ device: 1 }, at + o, s, v);
    rig.bus.configWrite({ device: 1 }, 0x04, 2, 0x0004);
    w(4, 4, 0xfee0_0000);
    w(0xc, 2, 0x0000);
    w(2, 2, 0x0051); // enable, 32 vectors
    w(0x10, 4, 0x8000_0000 | 0); // mask vector 31, written as an int32
    expect(rig.bus.configRead({ device: 1 }, at + 0x10, 4)).toBe(0x8000_0000);
    msi.notify(31);
    expect(msi.pending(31)).toBe(true);
    expect(rig.bus.configRead({ device: 1 }, at + 0x14, 4)).toBe(0x8000_0000);
    w(0x13, 1, 0); // unmask through the top byte alone
    expect(rig.messages).toEqual([{ address: 0xfee0_0000, data: 31 }]);
    expect(rig.bus.configRead({ device: 1 }, at + 0x14, 4)).toBe(0);
  });
});
