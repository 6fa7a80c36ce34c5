import {
  ConfigurationError,
  type IoHandler,
  type MsiMessage,
  type MsiVectorFactory,
  type MsiVectorSet,
} from "@vmm/core";
import { describe, expect, it } from "vitest";
import { MsiCapability, MsixCapability } from "../src/index.js";
import { makeRig, TestFunction } from "./helpers.js";

/** An overlay handler that answers 0xb0 + offset and records writes (window-relative). */
function quirk() {
  const writes: Array<[number, number, number]> = [];
  const handler: IoHandler = {
    read: (o, s) => {
      let v = 0;
      for (let i = s - 1; i >= 0; i--) v = v * 256 + ((0xb0 + o + i) & 0xff);
      return v;
    },
    write: (o, s, v) => void writes.push([o, s, v]),
  };
  return { handler, writes };
}

function overlayRig() {
  const rig = makeRig();
  const fn = new TestFunction({ bars: [{ index: 1, kind: "mem32", size: 0x1000 }] });
  const msix = new MsixCapability({ vectors: 2, tableBar: 1, tableOffset: 0x800 }); // PBA at 0x820
  fn.addCapability(msix);
  rig.bus.attach(fn);
  const bar = rig.bus.configRead({ device: 1 }, 0x14, 4);
  return { rig, fn, msix, bar };
}

describe("BAR handler layers: device, overlay windows, MSI-X", () => {
  it("sends accesses inside a window to the overlay (window-relative), the rest to the device, and splits straddlers", () => {
    const { rig, fn, bar } = overlayRig();
    const q = quirk();
    fn.overlayBar(1, { offset: 0x100, size: 0x10, name: "quirk", handler: q.handler }); // after attach: live
    expect(rig.mmio.read(bar + 0x104, 4)).toBe(0xb7b6b5b4);
    rig.mmio.write(bar + 0x108, 2, 0x1234);
    expect(q.writes).toEqual([[8, 2, 0x1234]]);
    expect(rig.mmio.read(bar + 0x80, 1)).toBe(0x80); // outside: the device
    expect(rig.mmio.read(bar, 1)).toBe(0xa1);
    // straddling the window's start and end: each side gets its own bytes
    rig.mmio.write(bar + 0xfe, 4, 0xaabb_ccdd);
    expect(fn.writes).toEqual([[1, 0xfe, 2, 0xccdd]]);
    expect(q.writes.at(-1)).toEqual([0, 2, 0xaabb]);
    expect(rig.mmio.read(bar + 0x10e, 4)).toBe(0x0010_bfbe); // overlay bytes 0xe-0xf, then the device's 2-byte read at 0x110
  });

  it("keeps the MSI-X table and PBA above an overlay that covers them", () => {
    const { rig, fn, msix, bar } = overlayRig();
    const q = quirk();
    fn.overlayBar(1, { offset: 0x800, size: 0x100, name: "over-table", handler: q.handler });
    expect(rig.mmio.read(bar + 0x80c, 4)).toBe(1); // vector 0 starts masked: the table answers
    rig.mmio.write(bar + 0x808, 4, 0x41);
    expect(msix.message(0).data).toBe(0x41);
    expect(rig.mmio.read(bar + 0x820, 4)).toBe(0); // PBA
    expect(rig.mmio.read(bar + 0x840, 1)).toBe(0xf0); // overlay offset 0x40
    expect(rig.mmio.read(bar + 0x81e, 4)).toBe(0); // entry 1 reserved bytes, then the PBA: no overlay byte
    rig.mmio.write(bar + 0x826, 4, 0xffff_ffff); // PBA end (read-only), then the overlay from 0x28
    expect(q.writes).toEqual([[0x28, 2, 0xffff]]);
    expect(fn.writes).toEqual([]);
  });

  it("removing an overlay gives its range back to the device (twice is harmless)", () => {
    const { rig, fn, bar } = overlayRig();
    const q = quirk();
    const handle = fn.overlayBar(1, { offset: 0x100, size: 0x10, name: "quirk", handler: q.handler });
    expect(rig.mmio.read(bar + 0x101, 1)).toBe(0xb1);
    handle.remove();
    handle.remove();
    expect(rig.mmio.read(bar + 0x101, 1)).toBe(0x01);
    fn.overlayBar(1, { offset: 0x100, size: 0x10, name: "again", handler: q.handler }); // the range is free again
    expect(rig.mmio.read(bar + 0x101, 1)).toBe(0xb1);
  });

  it("layers overlays on the device's handler before the bus decodes the BAR, and on a BAR without one", () => {
    const rig = makeRig();
    const fn = new (class extends TestFunction {
      protected override deviceBarHandler(index: number): IoHandler {
        return (index === 0 ? super.deviceBarHandler(index) : undefined) as IoHandler; // BAR1: mapped by the device
      }
    })({ bars: [{ index: 0, kind: "mem32", size: 0x1000 }, { index: 1, kind: "mem32", size: 0x1000 }] });
    expect(fn.barHandler(1)).toBeUndefined(); // self-mapped BAR, no layer: nothing registered
    const q = quirk();
    fn.overlayBar(1, { offset: 0x10, size: 0x10, name: "trap", handler: q.handler });
    rig.bus.attach(fn);
    const bar1 = rig.bus.configRead({ device: 1 }, 0x14, 4);
    expect(rig.mmio.read(bar1 + 0x10, 1)).toBe(0xb0);
    expect(rig.mmio.read(bar1 + 0x20, 1)).toBe(0); // no device handler under the window
  });

  it("rejects windows outside the BAR, on a missing BAR, or overlapping another", () => {
    const { fn } = overlayRig();
    const { handler } = quirk();
    fn.overlayBar(1, { offset: 0x100, size: 0x10, name: "a", handler });
    expect(() => fn.overlayBar(1, { offset: 0x108, size: 0x10, name: "b", handler })).toThrow(/overlaps "a"/);
    expect(() => fn.overlayBar(1, { offset: 0xff8, size: 0x10, name: "c", handler })).toThrow(ConfigurationError);
    expect(() => fn.overlayBar(1, { offset: 0, size: 0, name: "d", handler })).toThrow(ConfigurationError);
    expect(() => fn.overlayBar(3, { offset: 0, size: 4, name: "e", handler })).toThrow(/no BAR3/);
  });
});

/** A vector factory that records what the capabilities do with their vectors. */
function recordingFactory() {
  const log: string[] = [];
  const sets: Array<{ owner: string; set: MsiVectorSet; closed: boolean }> = [];
  const fmt = (m: MsiMessage | undefined) => (m ? `${m.address.toString(16)}/${m.data.toString(16)}` : "-");
  const factory: MsiVectorFactory = {
    create(owner, count) {
      const record = { owner, closed: false, set: undefined as unknown as MsiVectorSet };
      const programmed = new Array<MsiMessage | undefined>(count).fill(undefined);
      record.set = {
        count,
        vector: (i) => ({
          program: (m) => {
            if (fmt(programmed[i]) !== fmt(m)) log.push(`program ${i} ${fmt(m)}`);
            programmed[i] = m;
          },
          trigger: () => void log.push(`trigger ${i} ${fmt(programmed[i])}`),
        }),
        batch: (fn) => {
          log.push("batch");
          return fn();
        },
        close: () => void (record.closed = true),
      };
      sets.push(record);
      return record.set;
    },
  };
  return { factory, log, sets };
}

describe("MSI vectors: allocated once at attach, programmed while deliverable", () => {
  it("MSI-X programs a vector when it becomes deliverable, unprograms it when masked, triggers only deliverable ones", () => {
    const rec = recordingFactory();
    const rig = makeRig({ msiVectors: rec.factory });
    const fn = new TestFunction({ bars: [{ index: 1, kind: "mem32", size: 0x1000 }] });
    const msix = new MsixCapability({ vectors: 2, tableBar: 1, tableOffset: 0x800 });
    const at = fn.addCapability(msix);
    rig.bus.attach(fn);
    expect(rec.sets.map((s) => [s.owner, s.set.count])).toEqual([["test MSI-X", 2]]);
    expect(rig.bus.msiVectorSets(fn)).toEqual([rec.sets[0]!.set]);
    const bar = rig.bus.configRead({ device: 1 }, 0x14, 4);
    rig.bus.configWrite({ device: 1 }, 0x04, 2, 0x0006); // memory + bus master
    rig.mmio.write(bar + 0x800, 4, 0xfee0_0000);
    rig.mmio.write(bar + 0x808, 4, 0x41);
    rig.bus.configWrite({ device: 1 }, at + 2, 2, 0x8000); // MSI-X on; vector 0 still masked
    rec.log.length = 0;
    msix.notify(0); // pending
    rig.mmio.write(bar + 0x80c, 4, 0); // unmask: programmed first, then the pending message goes out
    expect(rec.log).toEqual(["batch", "program 0 fee00000/41", "trigger 0 fee00000/41"]);
    rec.log.length = 0;
    rig.bus.configWrite({ device: 1 }, at + 2, 2, 0xc000); // function mask: one batch for the whole table
    expect(rec.log).toEqual(["batch", "program 0 -"]);
    rec.log.length = 0;
    msix.notify(0);
    expect(rec.log).toEqual([]);
    rig.bus.detach(fn);
    expect(rec.sets[0]!.closed).toBe(true);
    expect(rig.bus.msiVectorSets(fn)).toEqual([]);
  });

  it("multi-message MSI programs each allocated vector with its number in the low data bits", () => {
    const rec = recordingFactory();
    const rig = makeRig({ msiVectors: rec.factory });
    const fn = new TestFunction();
    const msi = new MsiCapability({ vectors: 4, perVectorMask: true });
    const at = fn.addCapability(msi);
    rig.bus.attach(fn);
    const w = (o: number, s: 1 | 2 | 4, v: number) => rig.bus.configWrite({ device: 1 }, at + o, s, v);
    rig.bus.configWrite({ device: 1 }, 0x04, 2, 0x0004);
    w(4, 4, 0xfee0_0000);
    w(0xc, 2, 0x40);
    w(0x10, 4, 0x2); // vector 1 masked
    rec.log.length = 0;
    w(2, 2, 0x0021); // enable, 4 vectors
    expect(rec.log).toEqual(["batch", "program 0 fee00000/40", "program 2 fee00000/42", "program 3 fee00000/43"]);
    rec.log.length = 0;
    msi.notify(2);
    msi.notify(1); // masked: pending
    w(0x10, 4, 0);
    expect(rec.log).toEqual(["trigger 2 fee00000/42", "batch", "program 1 fee00000/41", "trigger 1 fee00000/41"]);
    rec.log.length = 0;
    rig.bus.configWrite({ device: 1 }, 0x04, 2, 0); // Bus Master off: nothing is deliverable
    expect(rec.log.filter((l) => l !== "batch")).toEqual(["program 0 -", "program 1 -", "program 2 -", "program 3 -"]);
  });
});
