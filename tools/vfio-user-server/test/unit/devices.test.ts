import { describe, expect, it } from "vitest";
import type { DeviceSpec } from "../../src/device/device-spec.js";
import { privateMemory } from "../../src/device/region.js";
import { type DeviceHost, SimulatedDevice } from "../../src/device/simulated-device.js";
import { DEVICES, DEVICE_NAMES } from "../../src/devices/index.js";
import { DmaMap } from "../../src/dma/dma-map.js";
import { DmaPort } from "../../src/dma/dma-port.js";
import { IrqState } from "../../src/irq/irq-state.js";
import { irqCountsOf } from "../../src/device/simulated-device.js";

/** A device in-process: private memory that pretends to be shareable (fd 99), fake eventfds, DMA into `ram` at 0x10000. */
function build(spec: DeviceSpec) {
  const signals: string[] = [];
  const irq = new IrqState(irqCountsOf(spec), { signal: (fd) => void signals.push(`fd${fd}`), isEventFd: () => true, close: () => undefined });
  const map = new DmaMap(8);
  const ram = new Uint8Array(0x10000);
  map.add({ address: 0x10000n, size: 0x10000n, readable: true, writable: true, file: { read: (o, n) => ram.slice(o, o + n), write: (o, d) => ram.set(d, o), close: () => undefined } });
  const exits: number[] = [];
  const logs: string[] = [];
  const host: DeviceHost = {
    irq,
    dma: new DmaPort(map, { read: () => new Uint8Array(0), write: () => undefined }, "fd"),
    memory: (_name, size) => ({ ...privateMemory(size), fd: 99 }),
    exit: (status) => void exits.push(status),
    log: (line) => void logs.push(line),
  };
  return { device: new SimulatedDevice(spec, host), irq, ram, signals, exits, logs };
}

const le32 = (n: number) => Uint8Array.of(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
const u32 = (b: Uint8Array) => (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;

describe("simulated devices", () => {
  it.each(DEVICE_NAMES)("%s: never offers the pages of the engine or the MSI-X table and PBA for mmap", (name) => {
    const spec = DEVICES[name]();
    const { device } = build(spec);
    const trapped = new Map<number, number[]>();
    const note = (bar: number, offset: number) => trapped.set(bar, [...(trapped.get(bar) ?? []), Math.floor(offset / 4096)]);
    note(spec.engine.bar, spec.engine.offset);
    const msix = spec.capabilities.find((c) => c.kind === "msix");
    if (msix?.kind === "msix") {
      note(msix.tableBar, msix.tableOffset);
      note(msix.pbaBar, msix.pbaOffset);
    }
    for (let index = 0; index < 6; index++) {
      const region = device.describeRegion(index);
      for (const area of region.mmapAreas) {
        for (const page of trapped.get(index) ?? []) expect(area.offset >= (page + 1) * 4096 || area.offset + area.size <= page * 4096).toBe(true);
      }
    }
  });

  it("refuses a spec that offers the engine's page for mmap, or capabilities that overlap", () => {
    const intx = DEVICES["intx-only"]();
    expect(() => build({ ...intx, bars: [{ ...intx.bars[0]!, mmap: "all" }] })).toThrow(/covers the page of test-engine/);
    // A version 2 PCIe capability at 0x60 would run into MSI at 0x80.
    const nvme = DEVICES.nvme();
    const v2 = nvme.capabilities.map((c) => (c.kind === "pcie" ? { ...c, version: 2 as const } : c));
    expect(() => build({ ...nvme, capabilities: v2 })).toThrow(/msi at 0x80 overlaps/);
  });

  it("runs the engine: DMA, errors that write nothing, INTx level through STATUS bit 2, CONTROL", () => {
    const { device, irq, ram, signals, exits } = build(DEVICES["intx-only"]());
    const write = (reg: number, v: number) => device.regionWrite(0, reg, le32(v));
    const read = (reg: number) => u32(device.regionRead(0, reg, 4));
    ram.set([1, 2, 3, 4], 0);
    write(0x08, 0x10000);
    write(0x10, 0x10010);
    write(0x18, 4);
    write(0x1c, 2);
    write(0x20, 0x10);
    write(0x28, 3);
    expect([...ram.subarray(0x10, 0x14)]).toEqual([0x11, 0x12, 0x13, 0x14]);
    write(0x10, 0x1fffe); // runs out of the window
    write(0x28, 3);
    expect(read(0x2c)).toBe(3);
    expect([...ram.subarray(0xfffe)]).toEqual([0, 0]);
    irq.set({ flags: 4 | 32, index: 0, start: 0, count: 1, fds: [7], bools: new Uint8Array(0) });
    write(0x28, 2);
    expect([signals, read(0x2c) & 4, irq.intxLevel]).toEqual([["fd7"], 4, true]);
    expect(device.config.u16(6) & 8).toBe(8);
    write(0x2c, 4);
    expect([irq.intxLevel, device.config.u16(6) & 8]).toEqual([false, 0]);
    write(0x3c, 0xdead0001);
    expect(exits).toEqual([3]);
    device.reset();
    expect([read(0x2c), read(0x30), read(0x34)]).toEqual([0, 0, 0]);
  });

  it("rtl8168: the back door reaches the device's own MSI-X table; 8-byte accesses split into dwords", () => {
    const { device } = build(DEVICES.rtl8168());
    device.regionWrite(2, 0x70, le32(0xfee00000));
    device.regionWrite(2, 0x74, le32(0x80010010));
    expect(u32(device.regionRead(4, 0x10, 4))).toBe(0xfee00000);
    expect(device.msixTable!.readDword(0x10)).toBe(0xfee00000);
    device.regionWrite(4, 0x18, Uint8Array.of(1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff)); // data, then vector control
    expect(device.msixTable!.isMasked(1)).toBe(true);
    expect(u32(device.regionRead(4, 0x1c, 4))).toBe(1); // reserved vector-control bits stay 0
    expect([...device.regionRead(2, 0x00, 6)]).toEqual([0x00, 0xe0, 0x4c, 0x68, 0x00, 0x01]);
  });

  it("rtl8168: an MSI-X vector goes to its eventfd only while its entry holds the host's message; a lost one is logged", () => {
    const { device, irq, signals, logs } = build(DEVICES.rtl8168());
    const raise = (v: number) => {
      device.regionWrite(2, 0x824, le32(v));
      device.regionWrite(2, 0x828, le32(2));
    };
    irq.set({ flags: 4 | 32, index: 2, start: 0, count: 4, fds: [10, 11, 12, 13], bools: new Uint8Array(0) });
    raise(2);
    expect(signals.splice(0)).toEqual(["fd12"]);
    // The guest's message through the back door replaces the host's in entry 2.
    device.regionWrite(2, 0x70, le32(0x62));
    device.regionWrite(2, 0x74, le32(0x80010028));
    raise(2);
    expect(signals.splice(0)).toEqual([]);
    expect(device.msixTable!.lostCount).toBe(1);
    expect(logs).toEqual(["msi-x vector 2 lost: entry 2 holds address 0xfee00000 data 0x62, not the message the host programmed"]);
    // A pending vector unmasked with a foreign message is lost too.
    device.regionWrite(4, 0x2c, le32(1));
    raise(2);
    device.regionWrite(4, 0x2c, le32(0));
    expect([signals.length, device.msixTable!.lostCount]).toEqual([0, 2]);
  });

  it("subpage-rom: IOADDR/IODATA in BAR1 reach the registers of BAR0", () => {
    const { device } = build(DEVICES["subpage-rom"]());
    device.regionWrite(1, 0, le32(0x40));
    expect(u32(device.regionRead(1, 4, 4))).toBe(0x45545556);
    device.regionWrite(1, 0, le32(0x78));
    device.regionWrite(1, 4, le32(0xabcd));
    expect(u32(device.regionRead(0, 0x78, 4))).toBe(0xabcd);
  });
});
