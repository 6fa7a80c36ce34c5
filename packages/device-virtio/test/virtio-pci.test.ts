import { describe, expect, it } from "vitest";
import { Status } from "../src/constants.js";
import { VirtioRng } from "../src/devices/rng.js";
import { MemoryBlockBackend } from "../src/backends/block.js";
import { VirtioBlk } from "../src/devices/blk.js";
import { ModernLayout } from "../src/transport/modern.js";
import { DriverRing } from "./driver.js";
import { C } from "./harness.js";
import { capabilities, modernDriverOver, pciMachine } from "./pci-machine.js";

describe("virtio-pci function identity", () => {
  it.each([
    ["rng", () => new VirtioRng(), 0x1044, 0xff0000],
    ["blk", () => new VirtioBlk(new MemoryBlockBackend(new Uint8Array(4096))), 0x1042, 0x018000],
  ])("modern %s: 1af4:%s, revision 1, subsystem 1af4:0x40+type, class", (_n, make, did, klass) => {
    const m = pciMachine(make());
    expect(m.cfg(0, 4)).toBe(((did << 16) | 0x1af4) >>> 0);
    expect(m.cfg(8, 4) >>> 0).toBe(((klass << 8) | 1) >>> 0);
    expect(m.cfg(0x2c, 2)).toBe(0x1af4);
    expect(m.cfg(0x2e, 2)).toBe(did - 0x1000);
    expect(m.cfg(0x3d, 1)).toBe(1);
    expect(m.bar(0)).toBeUndefined(); // no legacy I/O BAR
  });

  it("transitional rng: 1af4:1004, revision 0, subsystem id = type, legacy I/O BAR0", () => {
    const m = pciMachine(new VirtioRng(), "transitional");
    expect(m.cfg(0, 4)).toBe(0x10041af4);
    expect(m.cfg(8, 4) >>> 0).toBe(0xff000000);
    expect(m.cfg(0x2e, 2)).toBe(4);
    expect(m.cfg(0x10, 4) & 1).toBe(1);
  });

  it("chains MSI-X then the vendor capabilities: common, notify (multiplier), ISR, device, pci_cfg", () => {
    const m = pciMachine(new VirtioBlk(new MemoryBlockBackend(new Uint8Array(4096))));
    const caps = capabilities(m.cfg);
    expect(caps.map(([, id]) => id)).toEqual([0x11, 9, 9, 9, 9, 9]);
    const vendor = caps.filter(([, id]) => id === 9).map(([at]) => ({
      len: m.cfg(at + 2, 1),
      type: m.cfg(at + 3, 1),
      bar: m.cfg(at + 4, 1),
      offset: m.cfg(at + 8, 4),
      length: m.cfg(at + 12, 4),
      extra: m.cfg(at + 16, 4),
    }));
    expect(vendor).toEqual([
      { len: 16, type: 1, bar: 1, offset: 0, length: 0x38, extra: expect.any(Number) },
      { len: 20, type: 2, bar: 1, offset: ModernLayout.NOTIFY, length: 4, extra: 4 },
      { len: 16, type: 3, bar: 1, offset: ModernLayout.ISR, length: 1, extra: expect.any(Number) },
      { len: 16, type: 4, bar: 1, offset: ModernLayout.DEVICE, length: 60, extra: expect.any(Number) },
      { len: 20, type: 5, bar: 0, offset: 0, length: 0, extra: 0 },
    ]);
  });
});

describe("virtio-pci driven through the bus", () => {
  it("serves a request end to end with INTx on the routed line", () => {
    const m = pciMachine(new VirtioRng());
    const d = modernDriverOver(m);
    expect(d.init()).toBe(true);
    const buf = m.alloc.alloc(32);
    d.rings[0]!.post([{ addr: buf, len: 32, write: true }]);
    d.kick(0);
    expect(d.rings[0]!.takeUsed()).toEqual([{ id: 0, len: 32 }]);
    const gsi = m.bus.intxRoutes()[0]!.gsi;
    expect(m.lines.get(gsi)).toBe(true);
    expect(m.cfg(6, 2) & 0x8).toBe(0x8); // status.interrupt
    expect(d.isr()).toBe(1);
    expect(m.lines.get(gsi)).toBe(false);
  });

  it("delivers per-queue MSI-X messages once the guest enables MSI-X and unmasks the vector", () => {
    const m = pciMachine(new VirtioRng());
    const msix = m.fn.msix!;
    const cap = capabilities(m.cfg).find(([, id]) => id === 0x11)![0];
    m.cfgw(cap + 2, 2, 0x8000); // enable
    const table = m.bar(2)!;
    m.mmio.write(table + 16, 4, 0xfee0_0000); // vector 1 address
    m.mmio.write(table + 24, 4, 0x41); // data
    m.mmio.write(table + 28, 4, 0); // unmask
    expect(msix.enabled).toBe(true);
    const d = modernDriverOver(m);
    d.init({ vectors: [1], configVector: 0 });
    d.rings[0]!.post([{ addr: m.alloc.alloc(8), len: 8, write: true }]);
    d.kick(0);
    expect(m.msis).toEqual([{ address: 0xfee0_0000, data: 0x41 }]);
    const gsi = m.bus.intxRoutes()[0]!.gsi;
    expect(m.lines.get(gsi) ?? false).toBe(false);
  });

  it("registers one doorbell per queue and moves it with the BAR; the old address is released", () => {
    const m = pciMachine(new VirtioRng());
    const d = modernDriverOver(m);
    d.init();
    const old = m.bar(1)!;
    expect(m.ioevents.live().map((e) => e.request)).toEqual([{ space: "mmio", address: old + ModernLayout.NOTIFY, size: 0 }]);
    // The guest moves BAR1 with decoding on (like Linux reassigning resources).
    const moved = 0xd300_0000;
    m.cfgw(0x14, 4, moved);
    expect(m.bar(1)).toBe(moved);
    const live = m.ioevents.live();
    expect(live.map((e) => e.request.address)).toEqual([moved + ModernLayout.NOTIFY]);
    expect(m.ioevents.all.filter((e) => e.request.address === old + ModernLayout.NOTIFY).every((e) => e.removed)).toBe(true);
    // KVM firing the new ioeventfd notifies queue 0.
    d.rings[0]!.post([{ addr: m.alloc.alloc(8), len: 8, write: true }]);
    live[0]!.notify();
    expect(d.rings[0]!.usedIdx()).toBe(1);
    // Decode off: no doorbell at all.
    m.cfgw(4, 2, 0);
    expect(m.ioevents.live()).toEqual([]);
    expect(m.fn.doorbellAddress(1)).toBeUndefined();
  });

  it("a trapped doorbell write at the new BAR address notifies (no ioeventfd); the old address is dead", () => {
    const m = pciMachine(new VirtioRng());
    const d = modernDriverOver(m);
    d.init();
    const old = m.bar(1)!;
    m.cfgw(0x14, 4, 0xd300_0000);
    d.rings[0]!.post([{ addr: m.alloc.alloc(8), len: 8, write: true }]);
    m.mmio.write(old + ModernLayout.NOTIFY, 2, 0);
    expect(d.rings[0]!.usedIdx()).toBe(0);
    m.mmio.write(0xd300_0000 + ModernLayout.NOTIFY, 4, 0);
    expect(d.rings[0]!.usedIdx()).toBe(1);
  });

  it("VIRTIO_PCI_CAP_PCI_CFG reads and writes the BARs through config space", () => {
    const m = pciMachine(new VirtioRng());
    const pciCfg = capabilities(m.cfg).filter(([, id]) => id === 9).map(([at]) => at).find((at) => m.cfg(at + 3, 1) === 5)!;
    m.cfgw(pciCfg + 4, 1, 1); // bar 1
    m.cfgw(pciCfg + 8, 4, C.NUM_QUEUES);
    m.cfgw(pciCfg + 12, 4, 2);
    expect(m.cfg(pciCfg + 16, 4)).toBe(1);
    m.cfgw(pciCfg + 8, 4, C.STATUS);
    m.cfgw(pciCfg + 12, 4, 1);
    m.cfgw(pciCfg + 16, 4, Status.ACKNOWLEDGE);
    expect(modernDriverOver(m).status()).toBe(Status.ACKNOWLEDGE);
    m.cfgw(pciCfg + 12, 4, 3); // bad length: inert
    expect(m.cfg(pciCfg + 16, 4)).toBe(Status.ACKNOWLEDGE);
  });

  it("a function reset from the bus resets the virtio state too", () => {
    const m = pciMachine(new VirtioRng());
    const d = modernDriverOver(m);
    d.init();
    m.bus.reset();
    expect(modernDriverOver(m).status()).toBe(0);
  });
});

describe("transitional (legacy) interface", () => {
  it("negotiates, sets up a PFN queue, notifies through BAR0+0x10 and moves its port doorbells", () => {
    const m = pciMachine(new VirtioRng(), "transitional");
    const io = () => m.bar(0)!;
    const inl = (o: number) => m.pio.read(io() + o, 4);
    expect(inl(0) & 0x3000_0000).toBe(0x3000_0000); // indirect + event idx offered, low 32 bits only
    m.pio.write(io() + 0x12, 1, 3);
    m.pio.write(io() + 0x04, 4, 0); // no ring features
    m.pio.write(io() + 0x0e, 2, 0);
    const size = m.pio.read(io() + 0x0c, 2);
    expect(size).toBe(256);
    const pfn = 0x40; // rings at 0x40000 (inside RAM at 0x10000-0x410000)
    m.pio.write(io() + 0x08, 4, pfn);
    expect(m.pio.read(io() + 0x08, 4)).toBe(pfn);
    m.pio.write(io() + 0x12, 1, 7);
    const desc = pfn * 4096;
    const avail = desc + 16 * size;
    const ring = new DriverRing(m.memory, size, { desc, avail, used: Math.ceil((avail + 6 + 2 * size) / 4096) * 4096 });
    ring.post([{ addr: m.alloc.alloc(16), len: 16, write: true }]);
    m.pio.write(io() + 0x10, 1, 0); // outb also notifies
    expect(ring.takeUsed()).toEqual([{ id: 0, len: 16 }]);
    expect(m.pio.read(io() + 0x13, 1)).toBe(1);
    expect(m.pio.read(io() + 0x13, 1)).toBe(0);
    // Port doorbell: 16-bit with the queue index as datamatch, following BAR0 when it moves.
    expect(m.ioevents.live().find((e) => e.request.space === "pio")!.request).toEqual({ space: "pio", address: io() + 0x10, size: 2, datamatch: 0 });
    m.cfgw(0x10, 4, 0x7000);
    expect(io()).toBe(0x7000);
    expect(m.ioevents.live().filter((e) => e.request.space === "pio").map((e) => e.request.address)).toEqual([0x7010]);
  });

  it("moves the device configuration from 0x14 to 0x18 while MSI-X is enabled", () => {
    const m = pciMachine(new VirtioBlk(new MemoryBlockBackend(new Uint8Array(8192))), "transitional");
    const io = m.bar(0)!;
    expect(m.pio.read(io + 0x14, 4)).toBe(16); // capacity low word
    const cap = capabilities(m.cfg).find(([, id]) => id === 0x11)![0];
    m.cfgw(cap + 2, 2, 0x8000);
    expect(m.pio.read(io + 0x14, 2)).toBe(0xffff); // config vector
    m.pio.write(io + 0x14, 2, 0);
    expect(m.pio.read(io + 0x14, 2)).toBe(0);
    expect(m.pio.read(io + 0x18, 4)).toBe(16);
  });
});
