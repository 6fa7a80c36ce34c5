import { describe, expect, it } from "vitest";
import { ConfigurationError, type InterruptLine } from "@vmm/core";
import { DEFAULT_INTX_GSIS, swizzle } from "../src/index.js";
import { BarAllocator, WindowAllocator } from "../src/allocator.js";
import { makeRig, STANDARD_BARS, TestFunction } from "./helpers.js";

describe("INTx", () => {
  it("routes pins by the default swizzle and writes the interrupt line", () => {
    const rig = makeRig();
    const a = new TestFunction({ name: "a", interruptPin: 1 });
    const b = new TestFunction({ name: "b", interruptPin: 2 });
    const c = new TestFunction({ name: "c" });
    rig.bus.attach(a);
    rig.bus.attach(b);
    rig.bus.attach(c);
    expect(DEFAULT_INTX_GSIS).toEqual([5, 9, 10, 11]);
    expect(rig.bus.intxRoutes()).toEqual([
      { address: { segment: 0, bus: 0, device: 1, function: 0 }, pin: 1, gsi: 9 },
      { address: { segment: 0, bus: 0, device: 2, function: 0 }, pin: 2, gsi: 11 },
    ]);
    expect(rig.bus.configRead({ device: 1 }, 0x3c, 2)).toBe(0x0109);
    expect(rig.bus.configRead({ device: 3 }, 0x3c, 2)).toBe(0x0000);
    expect(swizzle(3, 4, [20, 21, 22, 23])).toBe(22);
  });

  it("accepts a routing function and an InterruptController", () => {
    const lines = new Map<number, boolean>();
    const rig = makeRig({
      irq: { signal: () => {}, line: (gsi): InterruptLine => ({ level: false, set: (l) => lines.set(gsi, l) }) },
      intxRoute: (address, pin) => 16 + address.device * 4 + pin - 1,
    });
    const a = new TestFunction({ interruptPin: 3 });
    rig.bus.attach(a, { device: 5 });
    a.intx.set(true);
    expect(lines.get(16 + 20 + 2)).toBe(true);
  });

  it("reflects the level in status bit 3 and masks the line with command.INTx-disable", () => {
    const rig = makeRig();
    const a = new TestFunction({ interruptPin: 1 });
    rig.bus.attach(a);
    const status = () => rig.bus.configRead({ device: 1 }, 0x06, 2) & 0x8;
    a.intx.set(true);
    expect(status()).toBe(8);
    expect(rig.levels.get(9)).toBe(true);
    rig.bus.configWrite({ device: 1 }, 0x04, 2, 0x0400);
    expect(rig.levels.get(9)).toBe(false);
    expect(status()).toBe(8);
    rig.bus.configWrite({ device: 1 }, 0x06, 2, 0xffff); // read-only
    expect(status()).toBe(8);
    a.intx.set(false);
    expect(status()).toBe(0);
    a.intx.set(true);
    expect(rig.levels.get(9)).toBe(false);
    rig.bus.configWrite({ device: 1 }, 0x04, 2, 0x0000);
    expect(rig.levels.get(9)).toBe(true);
  });

  it("shares a GSI wired-OR between functions", () => {
    const rig = makeRig({ intxGsis: [7] });
    const a = new TestFunction({ name: "a", interruptPin: 1 });
    const b = new TestFunction({ name: "b", interruptPin: 1 });
    rig.bus.attach(a);
    rig.bus.attach(b);
    a.intx.set(true);
    b.intx.set(true);
    a.intx.set(false);
    expect(rig.levels.get(7)).toBe(true);
    b.intx.set(false);
    expect(rig.levels.get(7)).toBe(false);
  });

  it("lets a function reset deassert INTx", () => {
    const rig = makeRig();
    const a = new TestFunction({ interruptPin: 1 });
    rig.bus.attach(a);
    a.intx.set(true);
    a.reset();
    expect(rig.levels.get(9)).toBe(false);
  });
});

describe("BAR allocation", () => {
  it("aligns each allocation to its size", () => {
    const w = new WindowAllocator("test", { base: 0x1000, size: 0x10000 });
    expect(w.allocate(0x10, "x")).toBe(0x1000);
    expect(w.allocate(0x1000, "x")).toBe(0x2000);
    expect(w.allocate(0x4, "x")).toBe(0x3000);
    expect(w.allocate(0x4000, "x")).toBe(0x4000);
  });

  it("names the device when a window is exhausted", () => {
    const rig = makeRig({ windows: { io: { base: 0x6200, size: 0x100 }, mem32: { base: 0xd200_0000, size: 0x1000 } } });
    rig.bus.attach(new TestFunction({ name: "first", bars: [{ index: 0, kind: "io", size: 0x100 }] }));
    expect(() => rig.bus.attach(new TestFunction({ name: "second", bars: [{ index: 0, kind: "io", size: 0x4 }] }))).toThrow(
      /second: BAR0: the I\/O window .* has no room/,
    );
    expect(rig.bus.configRead({ device: 2 }, 0, 4)).toBe(0xffff_ffff);
    expect(() =>
      rig.bus.attach(new TestFunction({ name: "big", bars: [{ index: 2, kind: "mem64", size: 0x2000 }] })),
    ).toThrow(ConfigurationError);
  });

  it("puts 64-bit BARs in the 64-bit window, or the 32-bit one without it", () => {
    const a = new BarAllocator({ io: { base: 0, size: 0 }, mem32: { base: 0xc000_0000, size: 0x100_0000 } });
    expect(a.allocate("mem64", 0x1000, "x")).toBe(0xc000_0000);
    const b = new BarAllocator({
      io: { base: 0, size: 0 },
      mem32: { base: 0xc000_0000, size: 0x100_0000 },
      mem64: { base: 2 ** 40, size: 2 ** 40 },
    });
    expect(b.allocate("mem64", 0x1000, "x")).toBe(2 ** 40);
    expect(() => new BarAllocator({ io: { base: 0xff00, size: 0x1000 }, mem32: { base: 0, size: 0 } })).toThrow(/io window/);
  });

  it("attach enables I/O and memory decoding so a guest without firmware finds devices ready", () => {
    const rig = makeRig();
    rig.bus.attach(new TestFunction({ bars: STANDARD_BARS }));
    rig.bus.attach(new TestFunction({ name: "mem-only", bars: [{ index: 0, kind: "mem32", size: 0x100 }] }));
    rig.bus.attach(new TestFunction({ name: "no-bars" }));
    expect(rig.bus.configRead({ device: 1 }, 0x04, 2)).toBe(0x0003);
    expect(rig.bus.configRead({ device: 2 }, 0x04, 2)).toBe(0x0002);
    expect(rig.bus.configRead({ device: 3 }, 0x04, 2)).toBe(0x0000);
    expect(rig.pio.read(0x6200, 1)).toBe(0xa0);
  });

  it("fails attach with a ConfigurationError when an assigned window is taken by a non-PCI owner", () => {
    const rig = makeRig();
    rig.mmio.register(0xd200_0000, 0x1000, "framebuffer", { read: () => 0, write: () => {} });
    expect(() => rig.bus.attach(new TestFunction({ name: "victim", bars: STANDARD_BARS }))).toThrow(
      /victim: BAR1 at 0xd2000000 cannot be mapped/,
    );
    expect(rig.bus.functions().length).toBe(1);
    expect(rig.pio.list().length).toBe(0);
  });
});
