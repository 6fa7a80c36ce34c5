import { createMmioSpace, createPortIoSpace, EdgeForwardingLine, type MsiMessage, SignalMsiVectors } from "@vmm/core";
import { PciBus } from "@vmm/pci";
import { describe, expect, it } from "vitest";
import { ID_MAGIC, PciProbe } from "../src/probe-device.js";

function setup() {
  const pio = createPortIoSpace();
  const mmio = createMmioSpace();
  const sent: MsiMessage[] = [];
  const levels: boolean[] = [];
  const bus = new PciBus({
    pio,
    mmio,
    msiVectors: new SignalMsiVectors({ signal: (m) => void sent.push(m) }),
    irq: () => new EdgeForwardingLine((l) => levels.push(l)),
    windows: { io: { base: 0x6200, size: 0x1000 }, mem32: { base: 0xc000_0000, size: 0x1000_0000 } },
  });
  const probe = new PciProbe("probe");
  const address = bus.attach(probe);
  const cfg = (off: number, size: 1 | 2 | 4 = 4) => bus.configRead(address, off, size);
  const bar = (i: number) => (cfg(0x10 + 4 * i) & ~0xf) >>> 0;
  return { bus, probe, address, cfg, bar, mmio, pio, sent, levels };
}

describe("PciProbe (the guest tests' device) on a bus without KVM", () => {
  it("answers its registers on every BAR", () => {
    const { mmio, pio, bar, cfg, address } = setup();
    expect(mmio.read(bar(1), 4)).toBe((ID_MAGIC | address.device) >>> 0);
    expect(pio.read(cfg(0x10) & 0xfffc, 4)).toBe((ID_MAGIC | address.device) >>> 0);
    mmio.write(bar(1) + 4, 4, 0x1234);
    expect(mmio.read(bar(1) + 4, 2)).toBe(0x1234);
  });

  it("raises MSI-X like a guest driver expects: pending while masked, delivered on unmask", () => {
    const { bus, address, mmio, bar, cfg, sent } = setup();
    const tableReg = cfg(0x44);
    const pbaReg = cfg(0x48);
    const table = bar(tableReg & 7) + ((tableReg & ~7) >>> 0);
    const pba = bar(pbaReg & 7) + ((pbaReg & ~7) >>> 0);
    mmio.write(table, 4, 0xfee00000);
    mmio.write(table + 8, 4, 0x41);
    bus.configWrite(address, 0x42, 2, cfg(0x42, 2) | 0x8000);
    bus.configWrite(address, 0x04, 2, cfg(0x04, 2) | 0x4); // Bus Master Enable: MSI-X messages are memory writes
    mmio.write(bar(1) + 8, 4, 0);
    expect(sent).toEqual([]);
    expect(mmio.read(pba, 4) & 1).toBe(1);
    mmio.write(table + 12, 4, 0);
    expect(sent).toEqual([{ address: 0xfee00000, data: 0x41 }]);
    expect(mmio.read(pba, 4) & 1).toBe(0);
  });
});
