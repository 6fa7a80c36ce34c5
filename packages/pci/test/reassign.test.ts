import { describe, expect, it } from "vitest";
import type { IoHandler } from "@vmm/core";
import { makeRig, ranges, STANDARD_BARS, TestFunction } from "./helpers.js";

function twoDevices() {
  const rig = makeRig();
  const a = new TestFunction({ name: "a", bars: STANDARD_BARS });
  const b = new TestFunction({ name: "b", bars: STANDARD_BARS });
  rig.bus.attach(a); // 00:01.0: io 0x6200, mem32 0xd2000000, mem64 2^36
  rig.bus.attach(b); // 00:02.0: io 0x6300, mem32 0xd2001000, mem64 2^36 + 0x4000
  const cfg = (dev: number) => ({
    read: (o: number, s = 4) => rig.bus.configRead({ device: dev }, o, s),
    write: (o: number, s: number, v: number) => rig.bus.configWrite({ device: dev }, o, s, v),
  });
  return { rig, a, b, A: cfg(1), B: cfg(2) };
}

const UART: IoHandler = { read: () => 0x60, write: () => {} };

describe("BAR reassignment", () => {
  it("moves a memory BAR while decoding is on", () => {
    const { rig, a, A } = twoDevices();
    a.events.length = 0;
    A.write(0x14, 4, 0xd380_0000);
    expect(a.events).toEqual(["-1@d2000000", "+1@d3800000"]);
    expect(rig.mmio.read(0xd380_0000, 1)).toBe(0xa1);
    expect(rig.mmio.read(0xd200_0000, 4)).toBe(0xffff_ffff);
    expect(rig.bus.windows(a).find((w) => w.index === 1)?.address).toBe(0xd380_0000);
  });

  it("moves a 64-bit BAR written through 2-byte accesses at odd offsets only once both halves are written", () => {
    const { rig, a, A } = twoDevices();
    a.events.length = 0;
    A.write(0x1d, 2, 0x0001); // high dword bits 23:8: 0x10 -> 0x110
    expect(A.read(0x1c)).toBe(0x110);
    expect(a.events).toEqual([]);
    A.write(0x19, 2, 0x0040); // low dword bits 23:8
    expect(A.read(0x18)).toBe(0x0000_400c);
    expect(a.events).toEqual(["-2@1000000000", "+2@11000004000"]);
    expect(rig.bus.stats.dropped).toBe(0);
  });

  it("moves an I/O BAR and follows the command register's decode bits", () => {
    const { rig, a, A } = twoDevices();
    A.write(0x10, 4, 0x7000);
    expect(rig.pio.read(0x7000, 1)).toBe(0xa0);
    expect(rig.pio.read(0x6200, 1)).toBe(0xff);
    A.write(0x04, 2, 0x0002); // I/O off, memory on
    expect(rig.pio.read(0x7000, 1)).toBe(0xff);
    expect(rig.mmio.read(0xd200_0000, 1)).toBe(0xa1);
    A.write(0x04, 2, 0x0000);
    expect(rig.bus.windows(a)).toEqual([]);
    A.write(0x14, 4, 0xd300_0000); // stored only
    expect(rig.mmio.read(0xd300_0000, 1)).toBe(0xff);
    A.write(0x04, 2, 0x0003);
    expect(rig.mmio.read(0xd300_0000, 1)).toBe(0xa1);
    expect(rig.pio.read(0x7000, 1)).toBe(0xa0);
  });

  it("moves a 64-bit BAR only once both halves are written", () => {
    const { rig, a, A } = twoDevices();
    const start = 2 ** 36;
    a.events.length = 0;
    A.write(0x18, 4, 0x0010_0000); // low half only
    expect(rig.mmio.read(start, 1)).toBe(0xa2);
    expect(a.events).toEqual([]);
    A.write(0x1c, 4, 0x2); // high half lands
    expect(a.events).toEqual([`-2@${start.toString(16)}`, "+2@200100000"]);
    expect(rig.mmio.read(0x2_0010_0000, 1)).toBe(0xa2);
    // high first, then low
    a.events.length = 0;
    A.write(0x1c, 4, 0x3);
    expect(a.events).toEqual([]);
    A.write(0x18, 4, 0x0020_0000);
    expect(a.events).toEqual(["-2@200100000", "+2@300200000"]);
    // only the low half changes, the high half is rewritten with its value
    a.events.length = 0;
    A.write(0x18, 4, 0x0040_0000);
    A.write(0x1c, 4, 0x3);
    expect(a.events).toEqual(["-2@300200000", "+2@300400000"]);
    // one 8-byte-like pair in a single pass via direct config writes is two dword writes; a half written back to
    // its decoded value cancels the pending move
    a.events.length = 0;
    A.write(0x18, 4, 0x0080_0000);
    A.write(0x18, 4, 0x0040_0000);
    A.write(0x1c, 4, 0x3);
    expect(a.events).toEqual([]);
  });

  it("commits a half-written 64-bit BAR when the guest turns decoding on", () => {
    const { rig, A } = twoDevices();
    A.write(0x04, 2, 0);
    A.write(0x18, 4, 0x0010_0000);
    A.write(0x04, 2, 0x0003);
    expect(rig.mmio.read(0x10_0010_0000, 1)).toBe(0xa2);
  });

  it("survives sizing with decoding on: all-ones then the original value restores the mapping", () => {
    const { rig, a, A } = twoDevices();
    for (const off of [0x10, 0x14, 0x18, 0x1c]) {
      const old = A.read(off);
      A.write(off, 4, 0xffff_ffff);
      A.write(off, 4, old);
      expect(A.read(off)).toBe(old);
    }
    expect(rig.pio.read(0x6200, 1)).toBe(0xa0);
    expect(rig.mmio.read(0xd200_0000, 1)).toBe(0xa1);
    expect(rig.mmio.read(2 ** 36, 1)).toBe(0xa2);
    // the 32-bit sizing pattern is not decoded at the top of 4 GiB
    a.events.length = 0;
    A.write(0x14, 4, 0xffff_ffff);
    expect(a.events).toEqual(["-1@d2000000"]);
    expect(rig.mmio.find(0xffff_f000)).toBeUndefined();
    A.write(0x14, 4, 0xd200_0000);
    expect(a.events).toEqual(["-1@d2000000", "+1@d2000000"]);
  });

  it("tolerates a BAR moved partly onto another device's window and restores it when the overlap ends", () => {
    const { rig, a, b, B } = twoDevices();
    B.write(0x14, 4, 0xd200_0000); // b's BAR1 exactly onto a's BAR1
    expect(rig.mmio.read(0xd200_0000, 1)).toBe(0xa1);
    expect(rig.mmio.find(0xd200_0000)?.owner).toBe("00:02.0 b BAR1");
    expect(rig.bus.windows(a).map((w) => w.index)).toEqual([0, 2]);
    expect(rig.bus.conflicts()).toEqual([
      {
        shadowed: { label: "00:01.0 a", index: 1, address: 0xd200_0000, size: 0x1000 },
        by: { label: "00:02.0 b", index: 1, address: 0xd200_0000, size: 0x1000 },
      },
    ]);
    expect(rig.logger.lines.some((l) => l.startsWith("debug: pci: 00:01.0 a BAR1") && l.includes("shadowed"))).toBe(true);
    B.write(0x14, 4, 0xd300_0000);
    expect(rig.mmio.find(0xd200_0000)?.owner).toBe("00:01.0 a BAR1");
    expect(rig.mmio.find(0xd300_0000)?.owner).toBe("00:02.0 b BAR1");
    expect(rig.bus.conflicts()).toEqual([]);
    // a bigger window partly over a smaller one: b's 64-bit BAR (16 KiB) over a's BAR1 (4 KiB) and more
    B.write(0x1c, 4, 0);
    B.write(0x18, 4, 0xd200_0000);
    expect(rig.mmio.find(0xd200_0000)?.owner).toBe("00:02.0 b BAR2");
    expect(rig.mmio.find(0xd200_3000)?.owner).toBe("00:02.0 b BAR2");
    expect(rig.bus.conflicts().map((c) => `${c.shadowed.label}/${c.shadowed.index}`)).toEqual(["00:01.0 a/1"]);
    B.write(0x04, 2, 0x0001); // memory decoding off on b ends the overlap
    expect(rig.mmio.find(0xd200_0000)?.owner).toBe("00:01.0 a BAR1");
    // an I/O BAR over another
    B.write(0x10, 4, 0x6200);
    expect(rig.pio.find(0x6200)?.owner).toBe("00:02.0 b BAR0");
    B.write(0x04, 2, 0); // turning b off ends the overlap too
    expect(rig.pio.find(0x6200)?.owner).toBe("00:01.0 a BAR0");
    expect(b.events.at(-1)).toMatch(/^-/);
  });

  it("lets the newest move win when the older device moves onto the newer one", () => {
    const { rig, A, B } = twoDevices();
    B.write(0x14, 4, 0xd300_0000);
    A.write(0x14, 4, 0xd300_0000);
    expect(rig.mmio.find(0xd300_0000)?.owner).toBe("00:01.0 a BAR1");
    A.write(0x14, 4, 0xd200_0000);
    expect(rig.mmio.find(0xd300_0000)?.owner).toBe("00:02.0 b BAR1");
  });

  it("rolls back a move onto a non-PCI owner with a warning", () => {
    const { rig, a, A } = twoDevices();
    rig.pio.register(0x3f8, 8, "uart", UART);
    a.events.length = 0;
    A.write(0x10, 4, 0x300);
    expect(A.read(0x10)).toBe(0x6201);
    expect(rig.pio.read(0x6200, 1)).toBe(0xa0);
    expect(rig.pio.find(0x3f8)?.owner).toBe("uart");
    expect(rig.logger.lines.some((l) => l.startsWith("warn: pci: 00:01.0 a BAR0 cannot be decoded at 0x300"))).toBe(true);
    expect(a.events).toEqual(["-0@6200", "+0@6200"]);
  });

  it("keeps a rolled-back window's rank: it does not win an overlap it did not win before", () => {
    const { rig, A, B } = twoDevices();
    rig.mmio.register(0xe000_0000, 0x1000, "framebuffer", UART);
    B.write(0x14, 4, 0xd200_0000); // b wins over a at 0xd2000000
    A.write(0x14, 4, 0xe000_0000); // a's move fails and is rolled back
    expect(A.read(0x14)).toBe(0xd200_0000);
    expect(rig.mmio.find(0xd200_0000)?.owner).toBe("00:02.0 b BAR1");
    expect(rig.bus.conflicts().map((c) => c.shadowed.label)).toEqual(["00:01.0 a"]);
  });

  it("rolls back a 64-bit move onto a non-PCI MMIO owner, both halves", () => {
    const { rig, A } = twoDevices();
    rig.mmio.register(0x1_0010_0000, 0x1000, "hpet-like", UART);
    A.write(0x18, 4, 0x0010_0000);
    A.write(0x1c, 4, 0x1);
    expect([A.read(0x18), A.read(0x1c)]).toEqual([0x0000_000c, 0x10]);
    expect(rig.mmio.read(2 ** 36, 1)).toBe(0xa2);
  });

  it("leaves a window undecoded (with a warning, no throw) when decoding is turned on over a non-PCI owner", () => {
    const { rig, a, A } = twoDevices();
    rig.pio.register(0x3f8, 8, "uart", UART);
    A.write(0x04, 2, 0x0002);
    A.write(0x10, 4, 0x3f8);
    A.write(0x04, 2, 0x0003);
    expect(rig.pio.find(0x3f8)?.owner).toBe("uart");
    expect(rig.bus.windows(a).map((w) => w.index)).toEqual([1, 2]);
    expect(rig.logger.lines.some((l) => l.startsWith("warn:"))).toBe(true);
    A.write(0x10, 4, 0x7000);
    expect(rig.pio.read(0x7000, 1)).toBe(0xa0);
  });

  it("does not decode windows beyond the address space", () => {
    const { rig, a, A } = twoDevices();
    A.write(0x10, 4, 0x1_0000); // above 64 KiB
    A.write(0x1c, 4, 0x0010_0000); // 2^52
    A.write(0x18, 4, 0);
    expect(rig.bus.windows(a).map((w) => w.index)).toEqual([1]);
    expect(ranges(rig.pio).some((r) => r.includes("a BAR0"))).toBe(false);
    A.write(0x10, 4, 0xff00); // ends exactly at 64 KiB: fine
    expect(rig.pio.read(0xff00, 1)).toBe(0xa0);
  });

  it("notifies devices that map windows themselves (no handler) without registering anything", () => {
    const rig = makeRig();
    const fn = new (class extends TestFunction {
      protected override deviceBarHandler(): IoHandler {
        return undefined as unknown as IoHandler;
      }
    })({ bars: [{ index: 0, kind: "mem32", size: 0x1000 }] });
    rig.bus.attach(fn);
    expect(fn.events).toEqual(["+0@d2000000"]);
    expect(rig.mmio.list()).toEqual([]);
  });

  it("detach unmaps a function and restores what it shadowed", () => {
    const { rig, a, b, B } = twoDevices();
    B.write(0x14, 4, 0xd200_0000);
    rig.bus.detach(b);
    expect(rig.mmio.find(0xd200_0000)?.owner).toBe("00:01.0 a BAR1");
    expect(rig.bus.configRead({ device: 2 }, 0, 4)).toBe(0xffff_ffff);
    expect(rig.bus.windows(a).length).toBe(3);
  });

  it("reset restores initial BARs and decode bits", () => {
    const { rig, A } = twoDevices();
    A.write(0x14, 4, 0xd380_0000);
    A.write(0x04, 2, 0x0000);
    rig.bus.reset();
    expect(A.read(0x04, 2)).toBe(0x0003);
    expect(rig.mmio.find(0xd200_0000)?.owner).toBe("00:01.0 a BAR1");
  });
});
