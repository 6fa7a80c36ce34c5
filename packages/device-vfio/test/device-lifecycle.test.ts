// Passthrough lifecycle: guest RAM mapped for DMA at attach (refused over a host reserved range), the device reset
// when the VM starts and stops, close() in the order that keeps memory safe, backend failures contained.
import { afterEach, describe, expect, it } from "vitest";
import { ConfigurationError, MemoryLogger, Tokens, type DeviceContext } from "@vmm/core";
import { VfioDeviceFlags, VfioIrq, VfioRegion } from "../src/backend/backend.js";
import { createVfioPciFunction } from "../src/device/index.js";
import { makeRig, nicDevice, passthrough, RAM, type Rig } from "./device-fake.js";

let rig: Rig;
afterEach(() => rig?.cleanup());

describe("DMA", () => {
  it("maps every guest RAM region at its guest-physical address, with the memfd behind it", () => {
    rig = makeRig();
    const dev = nicDevice();
    rig.bus.attach(passthrough(rig, dev));
    expect(dev.dma.map((r) => ({ iova: r.iova, size: r.size, fd: r.fd, fileOffset: r.fileOffset, readable: r.readable, writable: r.writable }))).toEqual([
      { iova: 0, size: 0x10_0000, fd: 1000, fileOffset: 0, readable: true, writable: true },
      { iova: 2 ** 32, size: 0x10_0000, fd: 1000, fileOffset: 0x10_0000, readable: true, writable: true },
    ]);
    expect(dev.dma[0]!.bytes).toBe(RAM[0]!.bytes);
  });

  it("refuses the device in one line naming both ranges when a host reserved range overlaps guest RAM", () => {
    rig = makeRig();
    const dev = nicDevice();
    dev.reserved = [
      { start: 0xfee0_0000, end: 0xfeef_ffff, type: "msi" }, // outside RAM: fine
      { start: 0x8_0000, end: 0x8_ffff, type: "reserved" },
    ];
    const fn = passthrough(rig, dev);
    let error: unknown;
    try {
      rig.bus.attach(fn);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toBe(
      "vfio0: guest RAM [0x0-0xfffff] overlaps the host's reserved range [0x80000-0x8ffff] (reserved): the device cannot reach that RAM by DMA",
    );
    expect(dev.dma).toEqual([]);
    expect(rig.bus.functions().some((f) => f.device === fn)).toBe(false);
  });

  it("a failed mapping unmaps what was mapped and names the RAM range", () => {
    rig = makeRig();
    const dev = nicDevice();
    const map = dev.dmaMap.bind(dev);
    dev.dmaMap = (r) => {
      if (r.iova !== 0) throw new Error("the server holds at most 1 DMA mapping");
      map(r);
    };
    expect(() => rig.bus.attach(passthrough(rig, dev))).toThrow(
      "vfio0: guest RAM [0x100000000-0x1000fffff] cannot be mapped for the device's DMA: the server holds at most 1 DMA mapping",
    );
    expect(dev.unmapped).toEqual(["0+100000"]);
  });
});

describe("reset and close", () => {
  it("resets the device when the VM starts, before its interrupts are set up", () => {
    rig = makeRig();
    const dev = nicDevice();
    passthrough(rig, dev);
    expect(dev.resets).toBe(0); // building the model touches nothing
    rig.bus.attach(passthrough(rig, dev, { name: "vfio1" }));
    expect(dev.resets).toBe(1);
    expect(dev.calls.indexOf("reset")).toBeLessThan(dev.calls.indexOf(`irq trigger ${VfioIrq.INTX}`));
  });

  it("close: interrupts off, memslots removed, device reset, DMA unmapped, backend closed; twice is harmless", () => {
    rig = makeRig();
    const dev = nicDevice();
    rig.mapper.calls = dev.calls;
    const fn = passthrough(rig, dev);
    rig.bus.attach(fn);
    const from = dev.calls.length;
    fn.close();
    fn.close();
    const steps = dev.calls.slice(from).map((c) => c.replace(/^(memslot -|dma unmap) [0-9a-f]+$/, "$1"));
    expect(steps).toEqual([`irq trigger-disable ${VfioIrq.INTX}`, "memslot -", "memslot -", "reset", "dma unmap", "dma unmap", "close"]);
    expect(rig.mapper.slots).toEqual([]);
    expect(dev.closed).toBe(true);
  });

  it("a device that cannot be reset is used anyway", () => {
    rig = makeRig();
    const dev = nicDevice();
    dev.flags = VfioDeviceFlags.PCI;
    const fn = passthrough(rig, dev);
    rig.bus.attach(fn);
    rig.bus.reset();
    expect(dev.resets).toBe(0);
    expect(fn.interruptMode).toBe("intx");
  });
});

describe("backend failures", () => {
  it("a failing BAR access reads all-ones and is logged once", () => {
    rig = makeRig();
    const dev = nicDevice();
    const fn = passthrough(rig, dev);
    rig.bus.attach(fn);
    const bar0 = rig.bus.windows(fn).find((w) => w.index === 0)!.address;
    dev.read = () => {
      throw new Error("the server closed the connection");
    };
    expect(rig.pio.read(bar0, 4)).toBe(0xffff_ffff);
    expect(rig.pio.read(bar0 + 4, 2)).toBe(0xffff);
    expect(fn.stats.backendErrors).toBe(2);
    expect(rig.logger.lines.filter((l) => l.includes("the server closed the connection"))).toEqual([
      "warn: vfio0: BAR0 read from fake 0000:01:00.0 failed: the server closed the connection",
    ]);
  });

  it("a refused SET_IRQS is logged and the guest goes on", () => {
    rig = makeRig();
    const dev = nicDevice();
    dev.refuse = "trigger";
    const fn = passthrough(rig, dev);
    rig.bus.attach(fn);
    expect(fn.stats.backendErrors).toBeGreaterThan(0);
    expect(rig.logger.lines.some((l) => l.includes("INTx trigger (VFIO_DEVICE_SET_IRQS) failed"))).toBe(true);
  });
});

describe("createVfioPciFunction", () => {
  it("takes the machine's services from the VM's container and the name from the context", () => {
    rig = makeRig();
    const logger = new MemoryLogger();
    const services = new Map<unknown, unknown>([
      [Tokens.MemoryMapper, rig.mapper],
      [Tokens.GuestMemory, rig.memory],
      [Tokens.Logger, logger],
    ]);
    const context = { name: "vfio-user0", container: { resolve: (token: unknown) => services.get(token) } } as unknown as DeviceContext;
    const dev = nicDevice();
    dev.bytes(VfioRegion.ROM).fill(0);
    const fn = createVfioPciFunction(context, dev, { rom: "none" });
    expect(fn.name).toBe("vfio-user0");
    rig.bus.attach(fn);
    expect(rig.mapper.slots.length).toBe(2);
    fn.close();
  });
});
