// Passthrough BARs: page-aligned mmap areas as memslots that follow every move and decode toggle, everything else
// (sparse holes, the MSI-X table and PBA, sub-page BARs, I/O BARs, quirk windows) trapped to the backend or the
// framework's emulation.
import { afterEach, describe, expect, it } from "vitest";
import type { PciBarWindow } from "@vmm/core";
import { VfioRegion } from "../src/backend/backend.js";
import { get, makeRig, nicDevice, nvmeDevice, passthrough, type Rig } from "./device-fake.js";

let rig: Rig;
afterEach(() => rig?.cleanup());

const windowOf = (windows: PciBarWindow[], index: number) => windows.find((w) => w.index === index)!;

describe("mmappable areas", () => {
  it("become memslots at the BAR's guest address; the MSI-X table and PBA page stays trapped", () => {
    rig = makeRig();
    const fn = passthrough(rig, nicDevice());
    rig.bus.attach(fn);
    const w = rig.bus.windows(fn);
    const bar2 = windowOf(w, 2).address;
    const bar4 = windowOf(w, 4).address;
    expect(rig.mapper.spans()).toEqual([`${bar2.toString(16)}+1000`, `${(bar4 + 0x1000).toString(16)}+3000`].sort());
    expect(fn.mappedSpans(4)).toEqual([{ offset: 0x1000, size: 0x3000 }]);
    expect(fn.mappedSpans(0)).toEqual([]); // I/O
  });

  it("share their bytes with the device", () => {
    rig = makeRig();
    const dev = nicDevice();
    const fn = passthrough(rig, dev);
    rig.bus.attach(fn);
    const bar2 = windowOf(rig.bus.windows(fn), 2).address;
    const slot = rig.mapper.slots.find((s) => s.gpa === bar2)!;
    slot.bytes[0x10] = 0x5a;
    expect(dev.bytes(VfioRegion.BAR2)[0x10]).toBe(0x5a);
    expect(slot.readonly).toBe(false);
  });

  it("follow a BAR move: the old memslot goes before the new one comes", () => {
    rig = makeRig();
    const fn = passthrough(rig, nicDevice());
    const at = rig.bus.attach(fn);
    const old = windowOf(rig.bus.windows(fn), 2).address;
    rig.mapper.log.length = 0;
    rig.bus.configWrite(at, 0x18, 4, 0xd380_0004);
    rig.bus.configWrite(at, 0x1c, 4, 0);
    expect(rig.mapper.log).toEqual([`-${old.toString(16)}`, "+d3800000/1000"]);
    expect(rig.mapper.slots.map((s) => s.gpa)).toContain(0xd380_0000);
    expect(rig.mapper.slots.map((s) => s.gpa)).not.toContain(old);
  });

  it("follow decode toggles of the command register", () => {
    rig = makeRig();
    const fn = passthrough(rig, nicDevice());
    const at = rig.bus.attach(fn);
    const mapped = rig.mapper.spans();
    rig.bus.configWrite(at, 0x04, 2, 0x0001); // memory decoding off
    expect(rig.mapper.slots).toEqual([]);
    rig.bus.configWrite(at, 0x04, 2, 0x0003);
    expect(rig.mapper.spans()).toEqual(mapped);
  });

  it("are all trapped with mmap off", () => {
    rig = makeRig();
    const dev = nicDevice();
    const fn = passthrough(rig, dev, { mmap: false });
    rig.bus.attach(fn);
    expect(rig.mapper.slots).toEqual([]);
    const bar2 = windowOf(rig.bus.windows(fn), 2).address;
    dev.bytes(VfioRegion.BAR2).set([0x78, 0x56, 0x34, 0x12], 0x20);
    expect(rig.mmio.read(bar2 + 0x20, 4)).toBe(0x1234_5678);
    expect(fn.stats.trappedReads).toBe(1);
  });

  it("trap when the mapper refuses the memslot, with a warning", () => {
    rig = makeRig();
    rig.mapper.map = () => {
      throw new Error("out of KVM memory slots");
    };
    const fn = passthrough(rig, nicDevice());
    rig.bus.attach(fn);
    expect(rig.logger.lines.some((l) => l.includes("cannot be mapped into the guest") && l.includes("out of KVM memory slots"))).toBe(true);
    const bar2 = windowOf(rig.bus.windows(fn), 2).address;
    rig.mmio.write(bar2 + 0x40, 4, 0xabcd);
    expect(fn.stats.trappedWrites).toBe(1);
  });
});

describe("trapped parts", () => {
  it("sparse-mmap holes: the MSI-X table and PBA go to the emulation, the rest of the hole to the device", () => {
    rig = makeRig();
    const dev = nvmeDevice();
    const fn = passthrough(rig, dev);
    rig.bus.attach(fn);
    const bar1 = windowOf(rig.bus.windows(fn), 1).address;
    expect(fn.mappedSpans(1)).toEqual([
      { offset: 0, size: 0x2000 },
      { offset: 0x3000, size: 0x1000 },
    ]);
    expect(rig.mapper.spans()).toEqual([`${bar1.toString(16)}+2000`, `${(bar1 + 0x3000).toString(16)}+1000`]);
    expect(rig.mmio.read(bar1 + 0x200c, 4)).toBe(1); // vector 0 control: masked (the VMM's table)
    rig.mmio.write(bar1 + 0x2000, 4, 0xfee0_0000);
    expect(rig.mmio.read(bar1 + 0x2000, 4)).toBe(0xfee0_0000);
    expect(rig.mmio.read(bar1 + 0x2800, 4)).toBe(0); // PBA
    expect(dev.regionReads).toEqual([]);
    expect(get(dev.bytes(VfioRegion.BAR1), 0x2000, 4)).toBe(0); // the device's table untouched
    dev.bytes(VfioRegion.BAR1).set([0xef, 0xbe], 0x2f00);
    expect(rig.mmio.read(bar1 + 0x2f00, 2)).toBe(0xbeef);
    expect(dev.regionReads).toEqual(["1:2f00/2"]);
  });

  it("a sub-page BAR is trapped whole, even when the device offers to map it", () => {
    rig = makeRig();
    const dev = nvmeDevice();
    const fn = passthrough(rig, dev);
    rig.bus.attach(fn);
    const bar0 = windowOf(rig.bus.windows(fn), 0).address;
    expect(fn.mappedSpans(0)).toEqual([]);
    rig.mmio.write(bar0 + 0x14, 4, 0x0046_0001);
    expect(dev.regionWrites).toEqual(["0:14/4=460001"]);
    expect(rig.mmio.read(bar0 + 0x14, 4)).toBe(0x0046_0001);
    expect(rig.mmio.read(bar0 + 0x14, 1)).toBe(0x01);
  });

  it("I/O BARs go through the backend", () => {
    rig = makeRig();
    const dev = nicDevice();
    const fn = passthrough(rig, dev);
    rig.bus.attach(fn);
    const bar0 = windowOf(rig.bus.windows(fn), 0).address;
    rig.pio.write(bar0 + 0x37, 1, 0x10);
    expect(dev.regionWrites).toEqual(["0:37/1=10"]);
    expect(rig.pio.read(bar0 + 0x37, 1)).toBe(0x10);
  });

  it("8-byte accesses reach the device whole", () => {
    rig = makeRig();
    const dev = nvmeDevice();
    const fn = passthrough(rig, dev);
    rig.bus.attach(fn);
    const bar0 = windowOf(rig.bus.windows(fn), 0).address;
    rig.mmio.write64(bar0 + 0x28, 0x1122_3344_5566_7788n);
    expect(dev.regionWrites).toEqual(["0:28/8=1122334455667788"]);
    expect(rig.mmio.read64(bar0 + 0x28)).toBe(0x1122_3344_5566_7788n);
  });

  it("a quirk window takes its page out of the memslots while it is there", () => {
    rig = makeRig();
    const dev = nicDevice();
    const fn = passthrough(rig, dev);
    rig.bus.attach(fn);
    const bar2 = windowOf(rig.bus.windows(fn), 2).address;
    const seen: string[] = [];
    const handle = fn.overlayBar(2, {
      name: "rtl8168 window",
      offset: 0x70,
      size: 8,
      handler: { read: (o) => 0xa0 + o, write: (o, _s, v) => void seen.push(`${o}=${v.toString(16)}`) },
    });
    expect(rig.mapper.spans().some((s) => s.startsWith(bar2.toString(16)))).toBe(false);
    expect(rig.mmio.read(bar2 + 0x74, 4)).toBe(0xa4);
    rig.mmio.write(bar2 + 0x70, 4, 0x1f000);
    expect(seen).toEqual(["0=1f000"]);
    rig.mmio.write(bar2 + 0x100, 4, 0x42); // the rest of the page reaches the device
    expect(dev.regionWrites).toEqual(["2:100/4=42"]);
    handle.remove();
    expect(rig.mapper.spans()).toContain(`${bar2.toString(16)}+1000`);
  });
});
