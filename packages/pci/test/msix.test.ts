import { describe, expect, it } from "vitest";
import { ConfigurationError } from "@vmm/core";
import { MsixCapability, type MsixChange } from "../src/index.js";
import { makeRig, TestFunction } from "./helpers.js";

function msixRig(vectors = 3) {
  const rig = makeRig();
  const fn = new TestFunction({ bars: [{ index: 1, kind: "mem32", size: 0x1000 }, { index: 2, kind: "mem32", size: 0x1000 }] });
  const msix = new MsixCapability({ vectors, tableBar: 2, tableOffset: 0x0, pbaOffset: 0x210 });
  const at = fn.addCapability(msix);
  rig.bus.attach(fn);
  rig.bus.configWrite({ device: 1 }, 0x04, 2, 0x0006); // memory decode and bus master, as a driver sets them
  const table = rig.bus.configRead({ device: 1 }, 0x18, 4); // BAR2
  const ctrl = (v: number) => rig.bus.configWrite({ device: 1 }, at + 2, 2, v);
  const entry = (v: number, address: number, data: number, masked: boolean) => {
    rig.mmio.write(table + 16 * v, 4, address);
    rig.mmio.write(table + 16 * v + 4, 4, 0);
    rig.mmio.write(table + 16 * v + 8, 4, data);
    rig.mmio.write(table + 16 * v + 12, 4, masked ? 1 : 0);
  };
  return { rig, fn, msix, at, table, ctrl, entry };
}

describe("MSI-X capability", () => {
  it("describes table and PBA location and size", () => {
    const { rig, at } = msixRig(33);
    const r = (o: number, s: number) => rig.bus.configRead({ device: 1 }, at + o, s);
    expect(r(0, 1)).toBe(0x11);
    expect(r(2, 2)).toBe(32);
    expect(r(4, 4)).toBe(0x0000_0002);
    expect(r(8, 4)).toBe(0x0000_0212);
    rig.bus.configWrite({ device: 1 }, at + 2, 2, 0xffff);
    expect(r(2, 2)).toBe(0xc020);
    rig.bus.configWrite({ device: 1 }, at + 4, 4, 0xffff_ffff);
    expect(r(4, 4)).toBe(0x0000_0002);
  });

  it("starts every vector masked with nothing pending", () => {
    const { rig, table, msix } = msixRig(3);
    for (let v = 0; v < 3; v++) {
      expect(rig.mmio.read(table + 16 * v + 12, 4)).toBe(1);
      expect(msix.masked(v)).toBe(true);
    }
    expect(rig.mmio.read(table + 0x210, 4)).toBe(0);
    expect(rig.mmio.read64(table + 8)).toBe(1n << 32n);
  });

  it("drops events while disabled, pends masked vectors and delivers them on unmask", () => {
    const { rig, msix, ctrl, entry, table } = msixRig(3);
    msix.notify(1);
    expect(msix.dropped).toBe(1);
    ctrl(0x8000);
    expect(msix.enabled).toBe(true);
    msix.notify(1);
    expect(rig.messages).toEqual([]);
    expect(rig.mmio.read(table + 0x210, 4)).toBe(0b10);
    entry(1, 0xfee0_0000, 0x41, false);
    expect(rig.messages).toEqual([{ address: 0xfee0_0000, data: 0x41 }]);
    expect(rig.mmio.read(table + 0x210, 4)).toBe(0);
    msix.notify(1);
    expect(rig.messages.length).toBe(2);
  });

  it("honours the function mask and delivers pending vectors when it clears", () => {
    const { rig, msix, ctrl, entry } = msixRig(3);
    entry(0, 0xfee0_0000, 0x30, false);
    entry(2, 0xfee0_1000, 0x32, false);
    ctrl(0xc000);
    msix.notify(0);
    msix.notify(2);
    expect(rig.messages).toEqual([]);
    expect([msix.pending(0), msix.pending(1), msix.pending(2)]).toEqual([true, false, true]);
    ctrl(0x8000);
    expect(rig.messages).toEqual([
      { address: 0xfee0_0000, data: 0x30 },
      { address: 0xfee0_1000, data: 0x32 },
    ]);
    expect(msix.pending(0)).toBe(false);
  });

  it("uses the live message: data changed after setup is what the next event sends", () => {
    const { rig, msix, ctrl, entry, table } = msixRig(3);
    entry(0, 0xfee0_0000, 0x40, false);
    ctrl(0x8000);
    msix.notify(0);
    rig.mmio.write(table + 8, 4, 0x41);
    msix.notify(0);
    expect(rig.messages.map((m) => m.data)).toEqual([0x40, 0x41]);
    rig.mmio.write64(table + 16, 0x1234_5678_9abc_def0n);
    expect(rig.mmio.read64(table + 16)).toBe(0x1234_5678_9abc_def0n);
  });

  it("keeps the PBA read-only and routes other BAR offsets to the device", () => {
    const { rig, fn, table } = msixRig(3);
    rig.mmio.write(table + 0x210, 4, 0xffff_ffff);
    expect(rig.mmio.read(table + 0x210, 4)).toBe(0);
    rig.mmio.write(table + 0x400, 4, 7);
    expect(fn.writes).toEqual([[2, 0x400, 4, 7]]);
    expect(rig.mmio.read(table + 0x801, 1)).toBe(0x01);
  });

  it("tells subscribers about entry and control changes, and resets to masked", () => {
    const { msix, ctrl, entry } = msixRig(3);
    const changes: MsixChange[] = [];
    msix.subscribe((c) => changes.push(c));
    ctrl(0x8000);
    entry(2, 0xfee0_0000, 1, false);
    expect(changes[0]).toEqual({ vector: "all" });
    expect(changes.slice(1).every((c) => c.vector === 2)).toBe(true);
    msix.notify(2);
    msix.reset();
    expect(msix.enabled).toBe(false);
    expect(msix.masked(2)).toBe(true);
  });

  it("rejects placements outside the BAR, in an I/O BAR, or overlapping", () => {
    const fn = new TestFunction({ name: "dev", bars: [{ index: 0, kind: "io", size: 0x100 }, { index: 1, kind: "mem32", size: 0x100 }] });
    expect(() => fn.addCapability(new MsixCapability({ vectors: 4, tableBar: 0 }))).toThrow(/dev: the MSI-X table needs memory BAR0/);
    expect(() => fn.addCapability(new MsixCapability({ vectors: 17, tableBar: 1 }))).toThrow(/dev: the MSI-X table does not fit/);
    expect(() => new MsixCapability({ vectors: 4, tableBar: 1, pbaOffset: 0x20 })).toThrow(/overlap/);
    expect(() => new MsixCapability({ vectors: 0, tableBar: 1 })).toThrow(ConfigurationError);
    expect(() => new MsixCapability({ vectors: 2, tableBar: 1, tableOffset: 4 })).toThrow(/aligned/);
  });
});

describe("a function from another copy of @vmm/pci", () => {
  it("still gets its MSI-X table carved out of the BAR (the bus does not rely on instanceof)", () => {
    const rig = makeRig();
    const inner = new TestFunction({ bars: [{ index: 2, kind: "mem32", size: 0x1000 }] });
    inner.addCapability(new MsixCapability({ vectors: 2, tableBar: 2, tableOffset: 0 }));
    // The same object seen through another prototype chain, as a plugin's own copy of PciFunction would be.
    const foreign = Object.create(Object.getPrototypeOf(Object.prototype), Object.getOwnPropertyDescriptors(inner));
    for (const key of ["configRead", "configWrite", "barHandler", "attach", "barActivated", "barDeactivated", "reset"] as const) {
      foreign[key] = (inner[key] as (...a: unknown[]) => unknown).bind(inner);
    }
    expect(foreign instanceof TestFunction).toBe(false);
    rig.bus.attach(foreign);
    const table = rig.bus.configRead({ device: 1 }, 0x18, 4);
    expect(rig.mmio.read(table + 12, 4)).toBe(1); // vector 0 starts masked: the table answers, not the device
  });
});

describe("MSI-X table accesses that span entries or regions", () => {
  it("a 4-byte write across two entries lands in both and both are reported", () => {
    const { rig, msix, table } = msixRig(3);
    const changes: MsixChange[] = [];
    msix.subscribe((c) => changes.push(c));
    rig.mmio.write(table + 14, 4, 0xfee0_0000); // entry 0 bytes 14-15 (reserved), entry 1 bytes 0-1
    expect(msix.message(1).address).toBe(0x0000_fee0);
    expect(changes).toEqual([{ vector: 0 }, { vector: 1 }]);
  });

  it("an unaligned 8-byte write across an entry boundary updates and reports both entries", () => {
    const { rig, msix, table, ctrl } = msixRig(3);
    ctrl(0x8000);
    msix.notify(1); // pending while masked
    const changes: MsixChange[] = [];
    msix.subscribe((c) => changes.push(c));
    rig.mmio.write(table + 16, 4, 0xfee0_0000);
    rig.mmio.write(table + 24, 4, 0x51);
    changes.length = 0;
    // bytes 26-33: entry 1 data high, vector control (unmask), reserved; entry 2 address bits 15:0
    rig.mmio.write64(table + 26, 0x3000n << 48n);
    expect(msix.masked(1)).toBe(false);
    expect(rig.messages).toEqual([{ address: 0xfee0_0000, data: 0x51 }]);
    expect(msix.message(2).address).toBe(0x3000);
    expect(changes).toEqual([{ vector: 1 }, { vector: 2 }]);
  });

  it("a qword write at table offset 12 unmasks entry 0 and programs entry 1", () => {
    const { rig, msix, table, ctrl } = msixRig(3);
    ctrl(0x8000);
    rig.mmio.write(table, 4, 0xfee0_0000);
    rig.mmio.write(table + 8, 4, 0x40);
    msix.notify(0);
    rig.mmio.write64(table + 12, 0xfee0_1000_0000_0000n);
    expect(rig.messages).toEqual([{ address: 0xfee0_0000, data: 0x40 }]);
    expect(msix.message(1).address).toBe(0xfee0_1000);
    expect(rig.mmio.read64(table + 12)).toBe(0xfee0_1000_0000_0000n);
  });

  it("splits accesses that straddle the table, the PBA and the device's own registers", () => {
    const rig = makeRig();
    const qwords: string[] = [];
    const regs = new Uint8Array(0x1000).map((_, i) => i & 0xff);
    class Qword extends TestFunction {
      protected override deviceBarHandler(index: number) {
        return {
          read: (o: number, s: 1 | 2 | 4) => (index === 1 ? regs.slice(o, o + s).reduceRight((v, b) => v * 256 + b, 0) : 0),
          write: (o: number, s: 1 | 2 | 4, v: number) => void this.writes.push([index, o, s, v]),
          read64: (o: number) => {
            qwords.push(`r${o.toString(16)}`);
            return 0n;
          },
          write64: (o: number) => void qwords.push(`w${o.toString(16)}`),
        };
      }
    }
    const fn = new Qword({ bars: [{ index: 1, kind: "mem32", size: 0x1000 }] });
    const msix = new MsixCapability({ vectors: 2, tableBar: 1, tableOffset: 0x800 }); // PBA at 0x820
    fn.addCapability(msix);
    rig.bus.attach(fn);
    const bar = rig.bus.configRead({ device: 1 }, 0x14, 4);
    // qword just below the table: the device gets its half, entry 0's address gets the other
    rig.mmio.write64(bar + 0x7fc, 0xfee0_3000_1234_5678n);
    expect(fn.writes).toEqual([[1, 0x7fc, 4, 0x1234_5678]]);
    expect(msix.message(0).address).toBe(0xfee0_3000);
    expect(rig.mmio.read64(bar + 0x7fc)).toBe(0xfee0_3000_fffe_fdfcn); // device bytes 0x7fc-0x7ff, then the table
    // fully inside the device's registers, a qword still goes to its read64/write64
    rig.mmio.write64(bar + 0x100, 1n);
    expect(rig.mmio.read64(bar + 0x100)).toBe(0n);
    expect(qwords).toEqual(["w100", "r100"]);
    // 4 bytes across the PBA's end: PBA bytes read 0 (nothing pending), the device answers for the rest
    expect(rig.mmio.read(bar + 0x826, 4)).toBe(0x2928_0000);
    rig.mmio.write(bar + 0x81e, 4, 0xffff_ffff); // entry 1 reserved bytes, then the read-only PBA
    expect(msix.pending(0)).toBe(false);
    expect(fn.writes.length).toBe(1);
  });
});
