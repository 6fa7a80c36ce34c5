import { createMmioSpace, createPortIoSpace, type InterruptLine, type MsiMessage, SignalMsiVectors } from "@vmm/core";
import { PciBus } from "@vmm/pci";
import { describe, expect, it } from "vitest";
import { Bars, DEFAULT_ID, MSIX_TABLE_OFFSET, PciTestDevice, Reg, TESTDEV_VENDOR_ID, TestdevRegisters } from "../src/index.js";

/** The device on a real PciBus, as a guest would find it, with MSI messages captured. */
function rig(vectors = 4) {
  const pio = createPortIoSpace();
  const mmio = createMmioSpace();
  const messages: MsiMessage[] = [];
  const bus = new PciBus({
    pio,
    mmio,
    msiVectors: new SignalMsiVectors({ signal: (m) => messages.push(m) }),
    irq: (): InterruptLine => ({ level: false, set() {} }),
    windows: { io: { base: 0x6200, size: 0x2000 }, mem32: { base: 0xd200_0000, size: 0x0100_0000 } },
  });
  const dev = new PciTestDevice({ name: "pci-testdev0", vectors });
  const address = bus.attach(dev);
  const cfg = (offset: number, size: 1 | 2 | 4 = 4) => bus.configRead(address, offset, size);
  const mem = (cfg(0x10 + 4 * Bars.mmio) & ~0xf) >>> 0;
  const io = cfg(0x10 + 4 * Bars.io) & ~0x3;
  return { bus, pio, mmio, dev, messages, address, cfg, mem, io };
}

describe("pci-testdev on the bus", () => {
  it("has its IDs, class and two BARs programmed by the bus", () => {
    const r = rig();
    expect(r.cfg(0x00) & 0xffff).toBe(TESTDEV_VENDOR_ID);
    expect(r.cfg(0x08) >>> 8).toBe(0xff0000);
    expect(r.cfg(0x10) & 0x1).toBe(0); // memory BAR
    expect(r.cfg(0x14) & 0x1).toBe(1); // I/O BAR
    expect(r.mem).toBeGreaterThanOrEqual(0xd200_0000);
    expect(r.io).toBeGreaterThanOrEqual(0x6200);
  });

  it("serves the same registers through the memory BAR and the I/O BAR", () => {
    const r = rig();
    expect(r.mmio.read(r.mem + Reg.ID, 4)).toBe(DEFAULT_ID);
    expect(r.pio.read(r.io + Reg.ID, 4)).toBe(DEFAULT_ID);
    r.mmio.write(r.mem + Reg.SCRATCH, 4, 0xdeadbeef);
    expect(r.pio.read(r.io + Reg.SCRATCH, 4)).toBe(0xdeadbeef);
    expect(r.pio.read(r.io + Reg.SCRATCH + 2, 2)).toBe(0xdead);
    r.pio.write(r.io + Reg.DOORBELL, 4, 7);
    r.mmio.write(r.mem + Reg.DOORBELL, 4, 9);
    expect(r.mmio.read(r.mem + Reg.COUNTER, 4)).toBe(2);
    expect(r.pio.read(r.io + Reg.LAST_DOORBELL, 4)).toBe(9);
  });

  it("raises the MSI-X vector written to MSIX_TRIGGER once the guest enabled and unmasked it", () => {
    const r = rig();
    // Program vector 2: address, data, unmask.
    const entry = r.mem + MSIX_TABLE_OFFSET + 2 * 16;
    r.mmio.write(entry, 4, 0xfee0_0000);
    r.mmio.write(entry + 4, 4, 0);
    r.mmio.write(entry + 8, 4, 0x4062);
    r.mmio.write(entry + 12, 4, 0);
    // Enable MSI-X in the capability's message control.
    let cap = r.cfg(0x34, 1);
    while (cap && r.cfg(cap, 1) !== 0x11) cap = r.cfg(cap + 1, 1);
    expect(cap).not.toBe(0);
    r.bus.configWrite(r.address, cap + 2, 2, r.cfg(cap + 2, 2) | 0x8000);
    // An MSI-X message is a memory write: it waits for Bus Master Enable.
    r.mmio.write(r.mem + Reg.MSIX_TRIGGER, 4, 2);
    expect(r.messages).toEqual([]);
    r.bus.configWrite(r.address, 0x04, 2, r.cfg(0x04, 2) | 0x4);
    expect(r.messages).toEqual([{ address: 0xfee0_0000, data: 0x4062 }]);
    expect(r.mmio.read(r.mem + Reg.IRQ_COUNT, 4)).toBe(1);
  });

  it("counts bad accesses instead of acting on them", () => {
    const r = rig(2);
    r.mmio.write(r.mem + Reg.MSIX_TRIGGER, 4, 5); // no such vector
    r.mmio.write(r.mem + Reg.ID, 4, 1); // read-only
    r.mmio.write(r.mem + Reg.SCRATCH, 2, 1); // narrow write
    expect(r.mmio.read(r.mem + 0x40, 4)).toBe(0xffffffff); // beyond the registers
    expect(r.mmio.read(r.mem + Reg.ERRORS, 4)).toBe(4);
    expect(r.mmio.read(r.mem + Reg.SCRATCH, 4)).toBe(0);
    expect(r.messages).toEqual([]);
  });
});

describe("pci-testdev snapshots", () => {
  it("a copy restored from its saved state answers with the same registers, on the same bus addresses", () => {
    const a = rig();
    a.mmio.write(a.mem + Reg.SCRATCH, 4, 0x1234_5678);
    for (const v of [3, 5]) a.pio.write(a.io + Reg.DOORBELL, 4, v);
    a.pio.write(a.io + Reg.SCRATCH, 2, 1); // refused: counted in ERRORS
    const saved = JSON.parse(JSON.stringify(a.bus.saveState())) as ReturnType<PciBus["saveState"]>;
    const b = rig();
    b.bus.restoreState(saved);
    for (const reg of [Reg.ID, Reg.SCRATCH, Reg.COUNTER, Reg.LAST_DOORBELL, Reg.IRQ_COUNT, Reg.ERRORS]) {
      expect(b.mmio.read(a.mem + reg, 4), `register 0x${reg.toString(16)}`).toBe(a.mmio.read(a.mem + reg, 4));
    }
    expect(b.pio.read(a.io + Reg.COUNTER, 4)).toBe(2);
    const own = a.dev.saveState();
    expect(() => b.dev.restoreState({ version: own.version, data: { ...(own.data as object), device: { version: 1, data: { scratch: -1 } } } })).toThrow(
      "pci-testdev0: scratch must be an integer in [0, 4294967295], got -1",
    );
  });
});

describe("TestdevRegisters", () => {
  it("reset clears everything but the ID", () => {
    const regs = new TestdevRegisters(0x1234, () => true);
    regs.write(Reg.SCRATCH, 4, 5);
    regs.write(Reg.DOORBELL, 4, 5);
    regs.write(Reg.MSIX_TRIGGER, 4, 0);
    regs.reset();
    expect([Reg.ID, Reg.SCRATCH, Reg.COUNTER, Reg.IRQ_COUNT].map((o) => regs.read(o, 4))).toEqual([0x1234, 0, 0, 0]);
  });
});
