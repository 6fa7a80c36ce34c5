import { describe, expect, it } from "vitest";
import { MsiCapability, MsixCapability, type MsixChange } from "../src/index.js";
import { makeRig, TestFunction } from "./helpers.js";

/** Records the Bus Master Enable hook's calls. */
class BmeFunction extends TestFunction {
  readonly changes: boolean[] = [];
  protected override busMasterChanged(enabled: boolean): void {
    this.changes.push(enabled);
  }
}

describe("Bus Master Enable", () => {
  it("busMasterEnabled follows command bit 2 and the hook fires only on changes", () => {
    const fn = new BmeFunction();
    expect(fn.busMasterEnabled).toBe(false);
    fn.configWrite(0x04, 2, 0x0003); // I/O + memory, no BME
    expect(fn.changes).toEqual([]);
    fn.configWrite(0x04, 1, 0x07);
    expect(fn.busMasterEnabled).toBe(true);
    fn.configWrite(0x04, 4, 0x0000_0007); // unchanged
    fn.configWrite(0x05, 1, 0x04); // upper byte only: BME untouched
    expect(fn.changes).toEqual([true]);
    fn.configWrite(0x04, 2, 0x0003);
    expect(fn.busMasterEnabled).toBe(false);
    expect(fn.changes).toEqual([true, false]);
  });

  it("a function reset clears Bus Master Enable and reports it", () => {
    const fn = new BmeFunction();
    fn.reset();
    expect(fn.changes).toEqual([]);
    fn.configWrite(0x04, 2, 0x0004);
    fn.reset();
    expect(fn.busMasterEnabled).toBe(false);
    expect(fn.changes).toEqual([true, false]);
  });
});

describe("Bus Master Enable gates MSI and MSI-X (memory writes), not INTx", () => {
  function msixRig() {
    const rig = makeRig();
    const fn = new BmeFunction({ interruptPin: 1, bars: [{ index: 1, kind: "mem32", size: 0x1000 }] });
    const msix = new MsixCapability({ vectors: 2, tableBar: 1, tableOffset: 0x800 }); // PBA at 0x820
    const at = fn.addCapability(msix);
    rig.bus.attach(fn);
    const bar = rig.bus.configRead({ device: 1 }, 0x14, 4);
    const command = (v: number) => rig.bus.configWrite({ device: 1 }, 0x04, 2, v);
    rig.bus.configWrite({ device: 1 }, at + 2, 2, 0x8000); // MSI-X enable
    for (const v of [0, 1]) {
      rig.mmio.write(bar + 0x800 + 16 * v, 4, 0xfee0_0000);
      rig.mmio.write(bar + 0x808 + 16 * v, 4, 0x30 + v);
      rig.mmio.write(bar + 0x80c + 16 * v, 4, 0); // unmasked
    }
    return { rig, fn, msix, bar, command };
  }

  it("MSI-X: held in the PBA while BME is clear, sent when it is set", () => {
    const { rig, fn, msix, bar, command } = msixRig();
    expect(fn.busMasterEnabled).toBe(false); // the bus turns on decoding only
    msix.notify(1);
    expect(rig.messages).toEqual([]);
    expect(msix.pending(1)).toBe(true);
    expect(rig.mmio.read(bar + 0x820, 4)).toBe(0b10);
    expect(msix.dropped).toBe(0);
    command(0x0006);
    expect(rig.messages).toEqual([{ address: 0xfee0_0000, data: 0x31 }]);
    expect(rig.mmio.read(bar + 0x820, 4)).toBe(0);
    msix.notify(0);
    expect(rig.messages.length).toBe(2);
  });

  it("MSI-X: a vector unmasked while BME is clear stays pending; BME set while masked waits for the unmask", () => {
    const { rig, msix, bar, command } = msixRig();
    rig.mmio.write(bar + 0x80c, 4, 1); // mask vector 0
    msix.notify(0);
    rig.mmio.write(bar + 0x80c, 4, 0); // unmask with BME clear
    expect(rig.messages).toEqual([]);
    expect(msix.pending(0)).toBe(true);
    rig.mmio.write(bar + 0x80c, 4, 1);
    command(0x0006);
    expect(rig.messages).toEqual([]);
    rig.mmio.write(bar + 0x80c, 4, 0);
    expect(rig.messages).toEqual([{ address: 0xfee0_0000, data: 0x30 }]);
  });

  it("MSI-X: clearing BME holds new messages again and tells subscribers; a reset drops what was held", () => {
    const { rig, fn, msix, command } = msixRig();
    command(0x0006);
    const changes: MsixChange[] = [];
    msix.subscribe((c) => changes.push(c));
    command(0x0002);
    expect(msix.busMaster).toBe(false);
    expect(changes).toEqual([{ vector: "all" }]);
    msix.notify(0);
    expect(rig.messages).toEqual([]);
    fn.reset();
    expect(msix.pending(0)).toBe(false);
    command(0x0006);
    expect(rig.messages).toEqual([]);
  });

  for (const perVectorMask of [false, true]) {
    it(`MSI (${perVectorMask ? "with" : "without"} per-vector masking): held per vector while BME is clear, sent when set`, () => {
      const rig = makeRig();
      const fn = new BmeFunction();
      const msi = new MsiCapability({ vectors: 4, perVectorMask });
      const at = fn.addCapability(msi);
      rig.bus.attach(fn);
      const w = (o: number, s: number, v: number) => rig.bus.configWrite({ device: 1 }, at + o, s, v);
      w(4, 4, 0xfee0_0000);
      w(0xc, 2, 0x4040);
      w(2, 2, 0x0021); // enable, 4 vectors
      msi.notify(2);
      msi.notify(3);
      expect(rig.messages).toEqual([]);
      expect([0, 1, 2, 3].map((v) => msi.pending(v))).toEqual([false, false, true, true]);
      if (perVectorMask) expect(rig.bus.configRead({ device: 1 }, at + 0x14, 4)).toBe(0b1100);
      rig.bus.configWrite({ device: 1 }, 0x04, 2, 0x0004);
      expect(rig.messages.map((m) => m.data)).toEqual([0x4042, 0x4043]);
      expect(msi.pending(2)).toBe(false);
      // clear again, signal, reset: nothing is sent when BME comes back
      rig.bus.configWrite({ device: 1 }, 0x04, 2, 0x0000);
      msi.notify(1);
      fn.reset();
      w(2, 2, 0x0021);
      rig.bus.configWrite({ device: 1 }, 0x04, 2, 0x0004);
      expect(rig.messages.length).toBe(2);
      expect(msi.dropped).toBe(0);
    });
  }

  it("INTx is not gated by Bus Master Enable", () => {
    const { rig, fn } = msixRig();
    const gsi = rig.bus.intxRoutes()[0]!.gsi;
    fn.intx.raise();
    expect(rig.levels.get(gsi)).toBe(true);
  });
});
