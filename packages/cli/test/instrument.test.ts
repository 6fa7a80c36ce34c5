import { MemoryLogger, type IoHandler, type PciDevice } from "@vmm/core";
import { PciFunction } from "@vmm/pci";
import { describe, expect, it } from "vitest";
import type { DeviceFaultError } from "../src/errors.js";
import { guardDevice } from "../src/instrument.js";

class Flaky extends PciFunction {
  #secret = 0x5a; // private fields must still work through the guard
  fail = false;
  constructor() {
    super({ name: "flaky0", vendorId: 0x1234, deviceId: 0x5678, classCode: 0xff0000, bars: [{ index: 0, kind: "mem64", size: 0x1000 }] });
  }
  get secret(): number {
    return this.#secret;
  }
  protected override deviceBarHandler(): IoHandler {
    return {
      read: () => {
        if (this.fail) throw new Error("boom");
        return this.#secret;
      },
      write: () => {},
      read64: () => 0x1122334455667788n,
    };
  }
}

function guarded(trace?: MemoryLogger) {
  const dev = new Flaky();
  const faults: DeviceFaultError[] = [];
  const g = guardDevice(dev, { onFault: (f) => faults.push(f), trace });
  return { dev, g, faults };
}

describe("guardDevice", () => {
  it("forwards everything, keeps instanceof and private fields working", () => {
    const { g } = guarded();
    expect(g).toBeInstanceOf(PciFunction);
    expect(g.name).toBe("flaky0");
    expect((g as Flaky).secret).toBe(0x5a);
    expect(g.configRead(0, 4)).toBe(0x56781234);
    const h = g.barHandler!(0)!;
    expect(h.read(0, 4)).toBe(0x5a);
    expect(h.read64!(0)).toBe(0x1122334455667788n);
  });

  it("turns the first exception into one fault naming the device and the access, then answers like an absent device", () => {
    const { dev, g, faults } = guarded();
    const h = g.barHandler!(0)!;
    dev.fail = true;
    expect(h.read(0x10, 2)).toBe(0xffff);
    expect(h.read(0x10, 4)).toBe(0xffffffff);
    dev.fail = false;
    expect(h.read(0, 4)).toBe(0xffffffff); // stays quiet after a fault
    expect(g.configRead(0, 4)).toBe(0xffffffff);
    expect(faults).toHaveLength(1);
    expect(faults[0]!.message).toBe("device flaky0 failed in BAR0 read at 0x10 (2 bytes): boom");
  });

  it("traces config accesses and BAR windows with a logger", () => {
    const log = new MemoryLogger();
    const { g } = guarded(log);
    g.configRead(0, 2);
    g.configWrite(4, 2, 0x2);
    g.barActivated!({ index: 0, kind: "mem64", address: 0xc000_0000, size: 0x1000 });
    expect(log.lines).toEqual([
      "debug: flaky0: config read 0x0/2 -> 0x1234",
      "debug: flaky0: config write 0x4/2 <- 0x2",
      "debug: flaky0: BAR0 (mem64) decoded at 0xc0000000 size 0x1000",
    ]);
  });

  it("leaves optional hooks absent when the device has none", () => {
    const plain: PciDevice = { name: "plain", bars: [], configRead: () => 0, configWrite() {} };
    const g = guardDevice(plain, { onFault() {} });
    expect(g.barHandler).toBeUndefined();
    expect(g.reset).toBeUndefined();
  });

  it("hands the bus unsigned values of the access width, whatever sign the device's code produced", () => {
    class Signed extends PciFunction {
      constructor() {
        super({ name: "signed0", vendorId: 0x1234, deviceId: 0x5678, classCode: 0xff0000, bars: [{ index: 0, kind: "mem64", size: 0x1000 }] });
      }
      override configRead(offset: number, size: 1 | 2 | 4): number {
        // A register assembled with | and <<: JavaScript makes bit 31 a sign.
        return offset === 0x40 ? (0x80 << 24) | 0x12 : offset === 0x44 ? -1 : super.configRead(offset, size);
      }
      protected override deviceBarHandler(): IoHandler {
        return { read: (_o, size) => (size === 4 ? 0x80000000 | 0 : -2), write: () => {}, read64: () => -1n };
      }
    }
    const trace = new MemoryLogger();
    const g = guardDevice(new Signed(), { onFault: () => {}, trace });
    expect(g.configRead(0x40, 4)).toBe(0x80000012);
    expect(g.configRead(0x44, 2)).toBe(0xffff);
    expect(g.configRead(0x44, 1)).toBe(0xff);
    const bar = g.barHandler!(0)!;
    expect(bar.read(0, 4)).toBe(0x80000000);
    expect(bar.read(0, 2)).toBe(0xfffe);
    expect(bar.read64!(0)).toBe(0xffff_ffff_ffff_ffffn);
    expect(trace.lines.join("\n")).toContain("signed0: config read 0x40/4 -> 0x80000012");
  });
});

