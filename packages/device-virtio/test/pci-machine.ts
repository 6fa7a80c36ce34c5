// A minimal machine for driving a VirtioPciFunction through a real PciBus: config space, BARs in the pio/mmio
// address spaces, MSI messages and INTx lines recorded, ioevents recorded (and fired by hand like KVM would).
import { createMmioSpace, createPortIoSpace, type GuestMemory, type Handle, type IoEventRegistry, type IoEventRequest, MemoryLogger, type MsiMessage, SignalMsiVectors } from "@vmm/core";
import { PciBus } from "@vmm/pci";
import type { VirtioDevice } from "../src/device.js";
import { type TransportKind, VirtioPciFunction } from "../src/transport/virtio-pci.js";
import { Allocator, makeMemory, RAM_BASE } from "./driver.js";
import { ModernDriver } from "./harness.js";

export interface RecordedIoEvent {
  request: IoEventRequest;
  notify: () => void;
  removed: boolean;
}

export class RecordingIoEvents implements IoEventRegistry {
  readonly all: RecordedIoEvent[] = [];
  add(request: IoEventRequest, notify: () => void): Handle {
    const e = { request, notify, removed: false };
    this.all.push(e);
    return { remove: () => void (e.removed = true) };
  }
  live(): RecordedIoEvent[] {
    return this.all.filter((e) => !e.removed);
  }
}

/** PCI command register bits the tests flip. */
export const Command = { MEMORY: 2, BUS_MASTER: 4 } as const;

/**
 * A bus with `device` attached and its BARs decoded. Bus Master Enable is set as a guest driver sets it before
 * using the device (Linux's pci_set_master), unless `busMaster: false`.
 */
export function pciMachine(device: VirtioDevice, transport: TransportKind = "modern", options: { busMaster?: boolean; memory?: GuestMemory } = {}) {
  const pio = createPortIoSpace();
  const mmio = createMmioSpace();
  const msis: MsiMessage[] = [];
  const lines = new Map<number, boolean>();
  const ioevents = new RecordingIoEvents();
  const logger = new MemoryLogger();
  const bus = new PciBus({
    pio,
    mmio,
    msiVectors: new SignalMsiVectors({ signal: (m) => void msis.push(m) }),
    irq: (gsi) => ({ level: false, set: (l: boolean) => void lines.set(gsi, l) }),
    windows: { io: { base: 0x6200, size: 0x9e00 }, mem32: { base: 0xd200_0000, size: 0x200_0000 } },
    hostBridge: false,
  });
  const memory = options.memory ?? makeMemory(4 << 20);
  const fn = new VirtioPciFunction({ name: "virtio-test", device, memory, ioevents, logger, transport });
  const address = bus.attach(fn);
  const cfg = (off: number, size: 1 | 2 | 4) => bus.configRead({ device: address.device }, off, size);
  const cfgw = (off: number, size: 1 | 2 | 4, v: number) => bus.configWrite({ device: address.device }, off, size, v);
  const bar = (index: number) => bus.windows(fn).find((w) => w.index === index)?.address;
  const setBusMaster = (on: boolean) => cfgw(4, 2, on ? cfg(4, 2) | Command.BUS_MASTER : cfg(4, 2) & ~Command.BUS_MASTER);
  if (options.busMaster !== false) setBusMaster(true);
  return { pio, mmio, msis, lines, ioevents, logger, bus, memory, fn, address, cfg, cfgw, bar, setBusMaster, alloc: new Allocator(RAM_BASE) };
}

/** A modern driver reaching BAR1 through the bus's MMIO space, wherever the BAR is now. */
export function modernDriverOver(m: ReturnType<typeof pciMachine>): ModernDriver {
  const base = () => m.bar(1)!;
  const bar = {
    read: (o: number, s: 1 | 2 | 4) => m.mmio.read(base() + o, s),
    write: (o: number, s: 1 | 2 | 4, v: number) => m.mmio.write(base() + o, s, v),
  };
  return new ModernDriver(bar, m.memory, m.alloc);
}

/** Walks the capability list: [offset, id] pairs. */
export function capabilities(cfg: (off: number, size: 1 | 2 | 4) => number): [number, number][] {
  const out: [number, number][] = [];
  for (let at = cfg(0x34, 1); at && out.length < 48; at = cfg(at + 1, 1)) out.push([at, cfg(at, 1)]);
  return out;
}
