import { describe, expect, it } from "vitest";
import { BridgeControl, BridgeReg, PciBridge, swizzle } from "../src/index.js";
import { ranges, rootPortRig, TestFunction } from "./helpers.js";

function tree() {
  const { rig, rp, ecam, ecamWrite } = rootPortRig();
  const ep = new TestFunction({
    name: "ep",
    interruptPin: 1,
    bars: [
      { index: 0, kind: "io", size: 0x100 },
      { index: 1, kind: "mem32", size: 0x1000 },
      { index: 2, kind: "mem64", size: 0x4000, prefetchable: true },
    ],
  });
  rig.bus.attach(ep, { behind: rp, express: "endpoint" });
  return { rig, rp, ep, ecam, ecamWrite };
}

describe("PCI-to-PCI bridges and root ports", () => {
  it("a root port has a type 1 header, a root-port PCIe capability, a trained link and a populated slot", () => {
    const { ecam } = tree();
    expect(ecam(0, 1, 0, 0x00)).toBe(0x000c_1b36);
    expect(ecam(0, 1, 0, 0x08) >>> 8).toBe(0x060400);
    expect(ecam(0, 1, 0, 0x0e, 1)).toBe(0x01);
    expect(ecam(0, 1, 0, 0x18) & 0xff_ffff).toBe(0x01_01_00); // primary 0, secondary 1, subordinate 1
    const cap = ecam(0, 1, 0, 0x34, 1);
    expect(ecam(0, 1, 0, cap, 1)).toBe(0x10);
    expect(ecam(0, 1, 0, cap + 2, 2)).toBe(0x0141); // version 1, root port, slot implemented
    expect(ecam(0, 1, 0, cap + 0x12, 2) & (1 << 13)).toBe(1 << 13); // Data Link Layer Link Active
    expect(ecam(0, 1, 0, cap + 0x0c) >>> 24).toBe(1); // port number
    expect(ecam(0, 1, 0, cap + 0x14) >>> 19).toBe(1); // physical slot number
    expect(ecam(0, 1, 0, cap + 0x1a, 2) & (1 << 6)).toBe(1 << 6); // Presence Detect State
    expect(ecam(0, 1, 0, 0x04, 2) & 7).toBe(7); // I/O, memory and bus-master forwarding on
  });

  it("routes config cycles to the secondary bus (device 0 only behind a PCIe port), by CF8 and ECAM alike", () => {
    const { rig, ecam } = tree();
    expect(ecam(1, 0, 0, 0)).toBe(0x1041_1af4);
    expect(ecam(1, 1, 0, 0)).toBe(0xffff_ffff);
    expect(ecam(2, 0, 0, 0)).toBe(0xffff_ffff);
    rig.pio.write(0xcf8, 4, 0x8001_0000);
    expect(rig.pio.read(0xcfc, 4) >>> 0).toBe(0x1041_1af4);
    rig.pio.write(0xcf8, 4, 0x8001_0800);
    expect(rig.pio.read(0xcfc, 4) >>> 0).toBe(0xffff_ffff);
  });

  it("follows the bus numbers the guest programs", () => {
    const { rig, ep, ecam, ecamWrite } = tree();
    ecamWrite(0, 1, 0, 0x19, 1, 5);
    expect(ecam(1, 0, 0, 0)).toBe(0xffff_ffff); // subordinate 1 < secondary 5: nothing forwarded
    ecamWrite(0, 1, 0, 0x1a, 1, 7);
    expect(ecam(5, 0, 0, 0)).toBe(0x1041_1af4);
    expect(ecam(6, 0, 0, 0)).toBe(0xffff_ffff);
    expect(rig.bus.functions().find((f) => f.device === ep)!.address.bus).toBe(5);
  });

  it("places endpoints behind a root port as PCI Express endpoints with 4 KiB config space", () => {
    const { rig, ecam } = tree();
    const cap = ecam(1, 0, 0, 0x34, 1);
    expect(ecam(1, 0, 0, cap, 1)).toBe(0x10);
    expect(ecam(1, 0, 0, cap + 2, 2) & 0xff).toBe(0x01); // endpoint, version 1
    expect(ecam(1, 0, 0, 0x100)).toBe(0); // an empty extended list
    const rc = new TestFunction({ name: "rc" });
    rig.bus.attach(rc, { device: 4, express: "rc-integrated" });
    const at = ecam(0, 4, 0, 0x34, 1);
    expect(ecam(0, 4, 0, at + 2, 2) & 0xff).toBe(0x91);
    const pci = new TestFunction({ name: "pci" });
    rig.bus.attach(pci, { device: 5 });
    expect(ecam(0, 5, 0, 0x34, 1)).toBe(0);
  });

  it("decodes a BAR behind a bridge only inside the bridge's windows and while it forwards", () => {
    const { rig, ep, ecam, ecamWrite } = tree();
    const mem = rig.bus.windows(ep).find((w) => w.index === 1)!;
    const base = ecam(0, 1, 0, 0x20, 2);
    const limit = ecam(0, 1, 0, 0x22, 2);
    expect(mem.address).toBeGreaterThanOrEqual(base * 0x1_0000);
    ep.events.length = 0;
    ecamWrite(0, 1, 0, 0x22, 2, 0); // limit below base: the window closes
    expect(ep.events).toEqual([`-1@${mem.address.toString(16)}`]);
    expect(rig.bus.decodedWindows(ep).map((w) => w.index).sort()).toEqual([0, 2]);
    ecamWrite(0, 1, 0, 0x22, 2, limit); // and opens again
    expect(rig.bus.windows(ep).map((w) => w.index).sort()).toEqual([0, 1, 2]);
    ecamWrite(0, 1, 0, 0x04, 2, 0x5); // memory forwarding off: both memory BARs go, the I/O BAR stays
    expect(rig.bus.windows(ep).map((w) => w.index)).toEqual([0]);
    ecamWrite(0, 1, 0, 0x04, 2, 0x7);
    expect(rig.bus.windows(ep).length).toBe(3);
    // Move the window away, then the BAR into it.
    ecamWrite(0, 1, 0, 0x20, 4, 0xdff0_dff0);
    expect(rig.bus.windows(ep).map((w) => w.index).sort()).toEqual([0, 2]);
    ecamWrite(1, 0, 0, 0x14, 4, 0xdff0_0000);
    expect(rig.bus.windows(ep).find((w) => w.index === 1)!.address).toBe(0xdff0_0000);
    expect(rig.mmio.read(0xdff0_0000, 1)).toBe(0xa1);
  });

  it("ISA enable keeps I/O BARs out of the ISA alias ranges; VGA enable forwards the legacy VGA ranges", () => {
    const { rig, ep, ecam, ecamWrite } = tree();
    const io = rig.bus.windows(ep).find((w) => w.index === 0)!;
    expect(io.address & 0x300).toBe(0);
    ecamWrite(0, 1, 0, 0x3e, 2, BridgeControl.ISA);
    expect(rig.bus.windows(ep).some((w) => w.index === 0)).toBe(true);
    ecamWrite(1, 0, 0, 0x10, 4, io.address + 0x100);
    expect(rig.bus.windows(ep).some((w) => w.index === 0)).toBe(false);
    ecamWrite(0, 1, 0, 0x3e, 2, 0);
    expect(rig.bus.windows(ep).find((w) => w.index === 0)!.address).toBe(io.address + 0x100);
    ecamWrite(1, 0, 0, 0x14, 4, 0xa_0000);
    expect(rig.bus.windows(ep).some((w) => w.index === 1)).toBe(false);
    ecamWrite(0, 1, 0, 0x3e, 2, BridgeControl.VGA);
    expect(rig.bus.windows(ep).find((w) => w.index === 1)!.address).toBe(0xa_0000);
    expect(ecam(0, 1, 0, 0x3e, 2)).toBe(BridgeControl.VGA);
  });

  it("a secondary bus reset resets every function below; a machine reset restores bus numbers and windows", () => {
    const { rig, ep, ecam, ecamWrite } = tree();
    const before = ranges(rig.mmio);
    ecamWrite(1, 0, 0, 0x04, 2, 0x7);
    ecamWrite(0, 1, 0, 0x3e, 2, BridgeControl.SECONDARY_BUS_RESET);
    expect(ecam(1, 0, 0, 0x04, 2)).toBe(0);
    expect(rig.bus.windows(ep)).toEqual([]);
    ecamWrite(0, 1, 0, 0x3e, 2, 0);
    ecamWrite(0, 1, 0, 0x18, 4, 0);
    ecamWrite(0, 1, 0, 0x04, 2, 0);
    rig.bus.reset();
    expect(ecam(0, 1, 0, 0x18) & 0xff_ffff).toBe(0x01_01_00);
    expect(ranges(rig.mmio)).toEqual(before);
  });

  it("swizzles INTx through bridges to a bus-0 slot pin", () => {
    const { rig, ep } = tree();
    const gsi = swizzle(1, 1, [5, 9, 10, 11]); // device 0 pin A behind 00:01.0 -> 00:01 pin A
    expect(rig.bus.intxRoutes()).toEqual([
      { address: { segment: 0, bus: 0, device: 1, function: 0 }, pin: 1, gsi, source: { address: { segment: 0, bus: 1, device: 0, function: 0 }, pin: 1 } },
    ]);
    ep.intx.raise();
    expect(rig.levels.get(gsi)).toBe(true);
    // Two levels: behind a conventional bridge at 00:02, a bridge at device 3, a function at device 1 pin C.
    const br = new PciBridge({ name: "br", reserve: { io: 0x1000, mem: 1 << 20, pref: 0 } });
    rig.bus.attach(br, { device: 2 });
    const inner = new PciBridge({ name: "inner", reserve: { io: 0x1000, mem: 1 << 20, pref: 0 } });
    rig.bus.attach(inner, { behind: br, device: 3 });
    const fn = new TestFunction({ name: "deep", interruptPin: 3, bars: [{ index: 0, kind: "mem32", size: 0x1000 }] });
    rig.bus.attach(fn, { behind: inner, device: 1 });
    // pin C at device 1 -> pin D at device 3 -> pin C at 00:02.
    const route = rig.bus.intxRoutes().find((r) => r.source?.address.device === 1)!;
    expect(route.address.device).toBe(2);
    expect(route.pin).toBe(3);
    expect(route.gsi).toBe(swizzle(2, 3, [5, 9, 10, 11]));
    // Bus numbers depth first: rp1 = 1, br = 2..3, inner = 3.
    expect(rig.bus.topology().map((n) => [n.name, n.bridge?.secondary, n.bridge?.subordinate])).toEqual([
      ["host-bridge", undefined, undefined],
      ["rp1", 1, 1],
      ["br", 2, 3],
    ]);
    expect(rig.bus.windows(fn)).toHaveLength(1);
    expect(rig.bus.configRead({ bus: 3, device: 1 }, 0, 4) >>> 0).toBe(0x1041_1af4);
  });

  it("rewrites the type of a function built as an endpoint when placed as an RC integrated endpoint", () => {
    const { rig } = tree();
    const fn = new TestFunction({ name: "built-ep", express: { type: "endpoint" } });
    rig.bus.attach(fn, { device: 6, express: "rc-integrated" });
    expect(fn.expressType).toBe("rc-integrated");
    expect(rig.bus.configRead({ device: 6 }, 0x42, 2) & 0xf0).toBe(0x90);
    const conventional = new TestFunction({ name: "conv" });
    rig.bus.attach(conventional, { device: 7 });
    expect(conventional.express).toBe(false);
    expect(() => conventional.addExtendedCapability({ id: 1, version: 1, body: new Uint8Array(4) })).toThrow(/PCI Express/);
    expect(rig.bus.configRead({ device: 7 }, 0x100, 4)).toBe(0);
  });

  it("detaching a bridge detaches what sits behind it and unmaps its windows", () => {
    const { rig, rp, ep, ecam } = tree();
    expect(rig.bus.windows(ep)).toHaveLength(3);
    rig.bus.detach(rp);
    expect(rig.bus.functions().map((f) => f.device.name)).toEqual(["host-bridge"]);
    expect(ranges(rig.mmio).filter((r) => !r.startsWith("pci ecam"))).toEqual([]);
    expect(ecam(1, 0, 0, 0)).toBe(0xffff_ffff);
  });

  it("rejects a second device behind a PCI Express port and attaching behind a function that is no bridge", () => {
    const { rig, rp, ep } = tree();
    expect(() => rig.bus.attach(new TestFunction({ name: "x" }), { behind: rp, device: 1 })).toThrow(/only device 0/);
    expect(() => rig.bus.attach(new TestFunction({ name: "y" }), { behind: ep })).toThrow(/not a bridge/);
    rig.bus.attach(new TestFunction({ name: "f1" }), { behind: rp, function: 1 });
    expect(rig.bus.configRead({ bus: 1, device: 0 }, 0x0e, 1) & 0x80).toBe(0x80);
    expect(BridgeReg.SECONDARY_BUS).toBe(0x19);
  });
});
