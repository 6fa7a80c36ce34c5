// The passthrough model's test bench: an in-memory VFIO device (config bytes, regions whose mmap areas are memfds
// mapped with host-io, IRQ eventfds it can signal, a log of every SET_IRQS), a PCI bus around it, a MemoryMapper
// that records memslots, and MSI vectors with real eventfds (as the machine's irqfd routes have).
import { closeSync, ftruncateSync, writeSync } from "node:fs";
import {
  createMmioSpace,
  createPortIoSpace,
  GuestMemory,
  MemoryLogger,
  type AddressSpace,
  type InterruptLine,
  type MappedRegion,
  type MemoryMapper,
  type MsiMessage,
  type MsiVectorFactory,
  type MsiVectorSet,
  type RamRegion,
} from "@vmm/core";
import { EventFd, mapFd, memfdCreate } from "@vmm/host-io";
import { PciBus, type PciBusOptions } from "@vmm/pci";
import {
  VfioDeviceFlags,
  VfioIrq,
  VfioRegion,
  VfioRegionFlags,
  type VfioBackend,
  type VfioDeviceInfo,
  type VfioDmaRegion,
  type VfioIrqInfo,
  type VfioIrqSet,
  type VfioMmapArea,
  type VfioRegionInfo,
  type VfioReservedRange,
} from "../src/backend/backend.js";
import { VfioPciFunction, type VfioPciOptions } from "../src/device/index.js";

const RW = VfioRegionFlags.READ | VfioRegionFlags.WRITE;

export interface FakeRegionSpec {
  size: number;
  flags?: number;
  /** Mappable areas (VFIO sparse mmap); "whole" = the region. The region's bytes then live in a memfd. */
  mmap?: "whole" | VfioMmapArea[];
}

interface FakeRegion {
  info: VfioRegionInfo;
  bytes: Uint8Array;
  memfd?: number;
}

/** An in-memory VFIO device. Config writes land as written (a device decides nothing here); tests poke `config`. */
export class FakeVfioDevice implements VfioBackend {
  readonly name = "fake 0000:01:00.0";
  readonly config: Uint8Array;
  flags = VfioDeviceFlags.PCI | VfioDeviceFlags.RESET;
  readonly irqCounts: number[] = [1, 1, 1, 0, 0];
  readonly irqLog: VfioIrqSet[] = [];
  /** The eventfds the device signals, per IRQ index and vector. */
  readonly triggers = new Map<number, number[]>();
  unmaskFd: number | undefined;
  readonly configWrites: string[] = [];
  readonly regionReads: string[] = [];
  readonly regionWrites: string[] = [];
  readonly dma: VfioDmaRegion[] = [];
  readonly unmapped: string[] = [];
  reserved: VfioReservedRange[] = [];
  resets = 0;
  closed = false;
  /** Every call in order, for checks of ordering. */
  readonly calls: string[] = [];
  /** Make `setIrqs` refuse requests of this action. */
  refuse: string | undefined;
  private readonly regions = new Map<number, FakeRegion>();

  constructor(configSize: 256 | 4096, regions: Record<number, FakeRegionSpec>) {
    this.config = new Uint8Array(configSize);
    for (const [k, spec] of Object.entries(regions)) this.addRegion(Number(k), spec);
    this.addRegion(VfioRegion.CONFIG, { size: configSize });
  }

  /** The bytes behind region `index` (for a memfd region: the device side of the shared pages). */
  bytes(index: number): Uint8Array {
    if (index === VfioRegion.CONFIG) return this.config;
    return this.regions.get(index)!.bytes;
  }

  deviceInfo(): VfioDeviceInfo {
    return { flags: this.flags, numRegions: 9, numIrqs: 5 };
  }

  regionInfo(index: number): VfioRegionInfo {
    return this.regions.get(index)?.info ?? { index, flags: 0, size: 0 };
  }

  irqInfo(index: number): VfioIrqInfo {
    return { index, flags: 1, count: this.irqCounts[index] ?? 0 };
  }

  read(index: number, offset: number, size: number): Uint8Array {
    const bytes = this.bytes(index);
    if (offset + size > bytes.length) throw new RangeError(`fake: read past region ${index}`);
    if (index !== VfioRegion.CONFIG) this.regionReads.push(`${index}:${offset.toString(16)}/${size}`);
    return bytes.slice(offset, offset + size);
  }

  write(index: number, offset: number, data: Uint8Array): void {
    const bytes = this.bytes(index);
    if (offset + data.length > bytes.length) throw new RangeError(`fake: write past region ${index}`);
    let v = 0n;
    for (let i = data.length - 1; i >= 0; i--) v = v * 256n + BigInt(data[i]!);
    const line = `${offset.toString(16)}/${data.length}=${v.toString(16)}`;
    if (index === VfioRegion.CONFIG) this.configWrites.push(line);
    else this.regionWrites.push(`${index}:${line}`);
    this.calls.push(`write ${index}:${line}`);
    bytes.set(data, offset);
  }

  setIrqs(request: VfioIrqSet): void {
    this.calls.push(`irq ${request.action} ${request.index}`);
    if (this.refuse === request.action) throw new Error(`fake refuses ${request.action}`);
    this.irqLog.push(request);
    if (request.action === "trigger") {
      const list = this.triggers.get(request.index) ?? [];
      request.fds.forEach((fd, i) => (list[request.start + i] = fd));
      this.triggers.set(request.index, list);
    } else if (request.action === "trigger-disable") {
      this.triggers.delete(request.index);
      if (request.index === VfioIrq.INTX) this.unmaskFd = undefined;
    } else if (request.action === "unmask-fd") {
      this.unmaskFd = request.fd;
    }
  }

  /** The device raises vector `vector` of `index`: a write to the eventfd it was given. False when it has none. */
  signal(index: number, vector = 0): boolean {
    const fd = this.triggers.get(index)?.[vector];
    if (fd === undefined || fd < 0) return false;
    signalEventFd(fd);
    return true;
  }

  reset(): boolean {
    this.calls.push("reset");
    if ((this.flags & VfioDeviceFlags.RESET) === 0) return false;
    this.resets++;
    return true;
  }

  dmaMap(region: VfioDmaRegion): void {
    this.calls.push(`dma map ${region.iova.toString(16)}`);
    this.dma.push(region);
  }

  dmaUnmap(iova: number, size: number): void {
    this.calls.push(`dma unmap ${iova.toString(16)}`);
    this.unmapped.push(`${iova.toString(16)}+${size.toString(16)}`);
  }

  reservedRanges(): readonly VfioReservedRange[] {
    return this.reserved;
  }

  onLost(): void {}

  close(): void {
    this.calls.push("close");
    this.closed = true;
    for (const r of this.regions.values()) if (r.memfd !== undefined) closeSync(r.memfd);
  }

  private addRegion(index: number, spec: FakeRegionSpec): void {
    let flags = spec.flags ?? RW;
    if (!spec.mmap) {
      this.regions.set(index, { info: { index, flags, size: spec.size }, bytes: new Uint8Array(spec.size) });
      return;
    }
    flags |= VfioRegionFlags.MMAP;
    const memfd = memfdCreate(`fake-bar${index}`);
    ftruncateSync(memfd, spec.size);
    const bytes = mapFd(memfd, 0, spec.size, { writable: true });
    const areas = spec.mmap === "whole" ? [{ offset: 0, size: spec.size }] : spec.mmap;
    this.regions.set(index, { info: { index, flags, size: spec.size, mmap: { fd: memfd, offset: 0, areas } }, bytes, memfd });
  }
}

/** Adds 1 to the eventfd `fd` (what a device or KVM does to signal it). */
export function signalEventFd(fd: number): void {
  const one = Buffer.alloc(8);
  one.writeBigUInt64LE(1n);
  writeSync(fd, one);
}

/** Little-endian config helpers for building a device. */
export function put(bytes: Uint8Array, offset: number, size: 1 | 2 | 4, value: number): void {
  for (let i = 0; i < size; i++) bytes[offset + i] = (value >>> (8 * i)) & 0xff;
}

export function get(bytes: Uint8Array, offset: number, size: 1 | 2 | 4): number {
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + bytes[offset + i]!;
  return v;
}

/** A ROM image: 55 AA, then a byte pattern. */
export function romImage(size: number): Uint8Array {
  const rom = new Uint8Array(size).map((_, i) => (i * 7 + 3) & 0xff);
  rom[0] = 0x55;
  rom[1] = 0xaa;
  return rom;
}

/**
 * A NIC-like PCI Express device: I/O BAR0 (256 B), MMIO BAR2 (64-bit, 4 KiB, mmappable), BAR4 (64-bit
 * prefetchable, 16 KiB, mmappable as a whole although its first page holds the MSI-X table and PBA), a 64 KiB ROM.
 * Capabilities: 0x40 PM -> 0x50 MSI (64-bit, per-vector mask) -> 0x70 PCI Express v2 endpoint -> 0xb0 MSI-X
 * (4 vectors, table BAR4+0, PBA BAR4+0x800) -> 0xc0 vendor-specific -> 0xd0 Enhanced Allocation. Extended:
 * 0x100 AER -> 0x140 SR-IOV -> 0x180 Device Serial Number. Vendor registers at 0x48 (between PM and MSI).
 */
export function nicDevice(): FakeVfioDevice {
  const dev = new FakeVfioDevice(4096, {
    [VfioRegion.BAR0]: { size: 0x100 },
    [VfioRegion.BAR2]: { size: 0x1000, mmap: "whole" },
    [VfioRegion.BAR4]: { size: 0x4000, mmap: "whole" },
    [VfioRegion.ROM]: { size: 0x10000, flags: VfioRegionFlags.READ },
  });
  dev.irqCounts[VfioIrq.MSI] = 8;
  dev.irqCounts[VfioIrq.MSIX] = 4;
  dev.bytes(VfioRegion.ROM).set(romImage(0x10000));
  const c = dev.config;
  put(c, 0x00, 2, 0x10ec);
  put(c, 0x02, 2, 0x8168);
  put(c, 0x06, 2, 0x0010); // capabilities list
  put(c, 0x08, 4, 0x0200_0015); // class 020000, revision 0x15
  put(c, 0x0e, 1, 0x80); // multi-function on the host: must not show
  put(c, 0x10, 4, 0x0000_0001); // BAR0 I/O
  put(c, 0x18, 4, 0x0000_0004); // BAR2 64-bit
  put(c, 0x20, 4, 0x0000_000c); // BAR4 64-bit prefetchable
  put(c, 0x2c, 2, 0x1043);
  put(c, 0x2e, 2, 0x8677);
  put(c, 0x34, 1, 0x40);
  put(c, 0x3d, 1, 1); // INTA#
  // PM
  put(c, 0x40, 2, 0x5001);
  put(c, 0x42, 2, 0x0003);
  put(c, 0x48, 4, 0xfeed_f00d); // vendor register between capabilities
  // MSI: 64-bit, per-vector mask, 4 vectors capable (MMC 2)
  put(c, 0x50, 2, 0x7005);
  put(c, 0x52, 2, 0x0184);
  // PCI Express v2 endpoint, the physical link 8 GT/s x4
  put(c, 0x70, 2, 0xb010);
  put(c, 0x72, 2, 0x0002 | (0 << 4));
  put(c, 0x74, 4, 0x1000_8fc0); // Device Capabilities: FLR capable, role-based error reporting
  put(c, 0x78, 2, 0x2810); // Device Control
  put(c, 0x7c, 4, 0x0047_cc43); // Link Capabilities: 8 GT/s, x4, ASPM
  put(c, 0x80, 2, 0x0040); // Link Control: common clock
  put(c, 0x82, 2, 0x1043); // Link Status: 8 GT/s x4
  put(c, 0x94, 4, 0x0000_0812); // Device Capabilities 2
  put(c, 0x9c, 4, 0x0000_000e); // Link Capabilities 2: 2.5, 5, 8 GT/s
  put(c, 0xa0, 2, 0x0003); // Link Control 2: target 8 GT/s
  // MSI-X: 4 vectors, table BAR4 + 0, PBA BAR4 + 0x800
  put(c, 0xb0, 2, 0xc011);
  put(c, 0xb2, 2, 0x0003);
  put(c, 0xb4, 4, 0x0000_0004);
  put(c, 0xb8, 4, 0x0000_0804);
  // vendor-specific, 8 bytes
  put(c, 0xc0, 2, 0xd009);
  put(c, 0xc2, 1, 0x08);
  put(c, 0xc4, 4, 0x1234_5678);
  // Enhanced Allocation (hidden)
  put(c, 0xd0, 2, 0x0014);
  put(c, 0xd4, 4, 0xdead_beef);
  // Extended: AER v1 -> SR-IOV v1 -> DSN v1
  put(c, 0x100, 4, (0x140 << 20) | (1 << 16) | 0x0001);
  put(c, 0x104, 4, 0x0000_0010); // AER uncorrectable status
  put(c, 0x140, 4, (0x180 << 20) | (1 << 16) | 0x0010);
  put(c, 0x144, 4, 0x0000_0002);
  put(c, 0x180, 4, (0 << 20) | (1 << 16) | 0x0003);
  put(c, 0x184, 4, 0x8765_4321);
  return dev;
}

/**
 * An NVMe-like conventional device: BAR0 a 256-byte (sub-page) register BAR that offers mmap anyway, BAR1-2 a
 * 64-bit BAR at an odd index (16 KiB) whose MSI-X table (2 vectors) sits at 0x2000 with a sparse mmap hole
 * there, no INTx, no PCI Express capability.
 */
export function nvmeDevice(): FakeVfioDevice {
  const dev = new FakeVfioDevice(256, {
    [VfioRegion.BAR0]: { size: 0x100, mmap: "whole" },
    [VfioRegion.BAR1]: { size: 0x4000, mmap: [{ offset: 0, size: 0x2000 }, { offset: 0x3000, size: 0x1000 }] },
  });
  dev.irqCounts[VfioIrq.INTX] = 0;
  dev.irqCounts[VfioIrq.MSI] = 0;
  dev.irqCounts[VfioIrq.MSIX] = 2;
  const c = dev.config;
  put(c, 0x00, 2, 0x8086);
  put(c, 0x02, 2, 0x0953);
  put(c, 0x06, 2, 0x0010);
  put(c, 0x08, 4, 0x0108_0201);
  put(c, 0x10, 4, 0x0000_0000);
  put(c, 0x14, 4, 0x0000_0004); // BAR1 64-bit: BAR2 is its upper half
  put(c, 0x34, 1, 0x60);
  put(c, 0x3d, 1, 1); // a pin, but the backend has no INTx to signal
  put(c, 0x60, 2, 0x0011);
  put(c, 0x62, 2, 0x0001);
  put(c, 0x64, 4, 0x0000_2001); // table BAR1 + 0x2000
  put(c, 0x68, 4, 0x0000_2801); // PBA BAR1 + 0x2800
  return dev;
}

/** A memslot as the fake mapper holds it. */
export interface FakeSlot {
  gpa: number;
  bytes: Uint8Array;
  readonly: boolean;
}

/** A MemoryMapper that records memslots: `slots` now, `log` of "+gpa/size" and "-gpa". */
export class RecordingMapper implements MemoryMapper {
  readonly slots: FakeSlot[] = [];
  readonly log: string[] = [];
  /** Shared with a FakeVfioDevice's `calls` to check ordering. */
  calls: string[] | undefined;

  allocate(size: number): Uint8Array {
    return new Uint8Array(size);
  }

  map(gpa: number, bytes: Uint8Array, options: { readonly?: boolean } = {}): MappedRegion {
    const slot: FakeSlot = { gpa, bytes, readonly: options.readonly ?? false };
    this.slots.push(slot);
    this.log.push(`+${gpa.toString(16)}/${bytes.length.toString(16)}`);
    this.calls?.push(`memslot + ${gpa.toString(16)}`);
    let removed = false;
    return {
      gpa,
      size: bytes.length,
      remove: () => {
        if (removed) return;
        removed = true;
        this.slots.splice(this.slots.indexOf(slot), 1);
        this.log.push(`-${gpa.toString(16)}`);
        this.calls?.push(`memslot - ${gpa.toString(16)}`);
      },
    };
  }

  /** The spans mapped now, as "gpa+size" sorted. */
  spans(): string[] {
    return this.slots.map((s) => `${s.gpa.toString(16)}+${s.bytes.length.toString(16)}`).sort();
  }
}

/** One vector of the fake platform: a real eventfd while programmed, like the machine's irqfd routes. */
export interface FakeVector {
  readonly eventFd: EventFd;
  message: MsiMessage | undefined;
  /** Deliveries from this process (trigger(): the capability sending a pending message). */
  slow: number;
}

/** MSI vectors with real eventfds: `sets` by owner; `fast(owner, v)` reads what the device wrote straight to a vector. */
export class EventFdVectors implements MsiVectorFactory {
  readonly sets = new Map<string, FakeVector[]>();
  private readonly all: EventFd[] = [];

  create(owner: string, count: number): MsiVectorSet {
    const vectors: FakeVector[] = Array.from({ length: count }, () => {
      const eventFd = new EventFd();
      this.all.push(eventFd);
      return { eventFd, message: undefined, slow: 0 };
    });
    this.sets.set(owner, vectors);
    return {
      count,
      vector: (i) => {
        const v = vectors[i]!;
        return {
          program: (m) => {
            v.message = m;
          },
          trigger: () => {
            if (v.message) v.slow++;
          },
          get eventFd() {
            return v.message ? v.eventFd.fd : undefined;
          },
        };
      },
      batch: (f) => f(),
      close: () => {},
    };
  }

  vector(owner: string, index: number): FakeVector {
    const set = [...this.sets.entries()].find(([o]) => o.endsWith(owner))?.[1];
    if (!set) throw new Error(`no vector set for ${owner}`);
    return set[index]!;
  }

  /** Signals the device sent straight to the vector's eventfd (no userspace hop), read and reset. */
  fast(owner: string, index: number): number {
    return Number(this.vector(owner, index).eventFd.read() ?? 0n);
  }

  close(): void {
    for (const e of this.all) e.close();
  }
}

/** The guest's INTx lines: levels per GSI and, with `irqfd`, the eventfd pairs registered on them. */
export class FakeLines {
  readonly levels = new Map<number, boolean>();
  readonly irqfds: Array<{ gsi: number; trigger: number; resample: number; removed: boolean }> = [];

  constructor(private readonly withIrqfd: boolean) {}

  line(gsi: number): InterruptLine {
    const lines = this;
    const line: InterruptLine = {
      get level() {
        return lines.levels.get(gsi) ?? false;
      },
      set: (l) => lines.levels.set(gsi, l),
    };
    if (this.withIrqfd) {
      line.irqfd = (trigger, resample) => {
        const r = { gsi, trigger, resample, removed: false };
        this.irqfds.push(r);
        return { remove: () => void (r.removed = true) };
      };
    }
    return line;
  }

  /** The registration live now, if any. */
  live(): { gsi: number; trigger: number; resample: number } | undefined {
    return this.irqfds.find((r) => !r.removed);
  }
}

export interface Rig {
  bus: PciBus;
  pio: AddressSpace;
  mmio: AddressSpace;
  mapper: RecordingMapper;
  vectors: EventFdVectors;
  lines: FakeLines;
  logger: MemoryLogger;
  memory: GuestMemory;
  cleanup(): void;
}

export const WINDOWS: PciBusOptions["windows"] = {
  io: { base: 0x6000, size: 0x8000 },
  mem32: { base: 0xd200_0000, size: 0x0100_0000 },
  mem64: { base: 2 ** 36, size: 2 ** 32 },
};

/** Guest RAM: 1 MiB at 0 and 1 MiB at 4 GiB, "memfd-backed" (fd numbers are only recorded by the fake). */
export const RAM: RamRegion[] = [
  { gpa: 0, bytes: new Uint8Array(0x10_0000), file: { fd: 1000, offset: 0 } },
  { gpa: 2 ** 32, bytes: new Uint8Array(0x10_0000), file: { fd: 1000, offset: 0x10_0000 } },
];

export function makeRig(options: { irqfd?: boolean } = {}): Rig {
  const pio = createPortIoSpace();
  const mmio = createMmioSpace();
  const vectors = new EventFdVectors();
  const lines = new FakeLines(options.irqfd ?? true);
  const logger = new MemoryLogger();
  const bus = new PciBus({ pio, mmio, msiVectors: vectors, irq: (gsi) => lines.line(gsi), windows: WINDOWS, logger });
  const functions: VfioPciFunction[] = [];
  const rig: Rig = {
    bus,
    pio,
    mmio,
    mapper: new RecordingMapper(),
    vectors,
    lines,
    logger,
    memory: new GuestMemory(RAM),
    cleanup: () => {
      for (const f of functions) f.close();
      vectors.close();
    },
  };
  created.set(rig, functions);
  return rig;
}

const created = new WeakMap<Rig, VfioPciFunction[]>();

/** A model of `device` on the rig (closed by `rig.cleanup()`). */
export function passthrough(rig: Rig, device: FakeVfioDevice, options: Partial<VfioPciOptions> = {}): VfioPciFunction {
  const fn = new VfioPciFunction({
    name: "vfio0",
    backend: device,
    memoryMapper: rig.mapper,
    guestMemory: rig.memory,
    logger: rig.logger,
    ...options,
  });
  created.get(rig)!.push(fn);
  return fn;
}

/** Waits for the event loop to deliver eventfd callbacks until `check` holds (or fails after `ms`). */
export async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Lets pending eventfd callbacks run (for checks that nothing happens). */
export const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 30));
