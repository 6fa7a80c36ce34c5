import { describe, expect, it } from "vitest";
import { createMmioSpace, createPortIoSpace, type InterruptLine, type MsiMessage } from "@vmm/core";
import { MsixCapability, PciBus, PciFunction } from "../src/index.js";

describe("smoke", () => {
  it("attaches and maps", () => {
    const pio = createPortIoSpace();
    const mmio = createMmioSpace();
    const msgs: MsiMessage[] = [];
    const levels = new Map<number, boolean>();
    const bus = new PciBus({
      pio,
      mmio,
      msi: { signal: (m) => msgs.push(m) },
      irq: (gsi): InterruptLine => ({ level: false, set: (l) => levels.set(gsi, l) }),
      windows: { io: { base: 0x6200, size: 0x1000 }, mem32: { base: 0xd2000000, size: 0x1000000 }, mem64: { base: 2 ** 34, size: 2 ** 30 } },
    });
    class Dev extends PciFunction {
      constructor() {
        super({ name: "dev", vendorId: 0x1af4, deviceId: 0x1041, classCode: 0x020000, interruptPin: 1,
          bars: [{ index: 0, kind: "io", size: 0x100 }, { index: 1, kind: "mem32", size: 0x1000 }, { index: 2, kind: "mem64", size: 0x4000, prefetchable: true }] });
        this.addCapability(new MsixCapability({ vectors: 3, tableBar: 1, tableOffset: 0x800 }));
      }
      override barHandler(i: number) { return { read: () => i, write: () => {} }; }
    }
    const d = new Dev();
    const a = bus.attach(d);
    bus.installConfigPorts();
    console.log(a, bus.windows(d), pio.list().map((r) => [r.base.toString(16), r.owner]), mmio.list().map((r) => [r.base.toString(16), r.owner]));
    pio.write(0xcf8, 4, 0x80000800);
    console.log(pio.read(0xcfc, 4).toString(16), pio.read(0xcf8, 4).toString(16));
    expect(bus.windows(d).length).toBe(3);
    console.log(bus.intxRoutes());
  });
});
