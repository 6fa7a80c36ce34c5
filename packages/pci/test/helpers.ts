import {
  createMmioSpace,
  createPortIoSpace,
  MemoryLogger,
  SignalMsiVectors,
  type AddressSpace,
  type InterruptLine,
  type IoHandler,
  type MsiMessage,
  type PciBarDescriptor,
  type PciBarWindow,
} from "@vmm/core";
import { PciBus, PciFunction, PcieRootPort, type PciBusOptions, type PciFunctionOptions } from "../src/index.js";

export const WINDOWS = {
  io: { base: 0x6200, size: 0x2000 },
  mem32: { base: 0xd200_0000, size: 0x0100_0000 },
  mem64: { base: 2 ** 36, size: 2 ** 32 },
};

export interface Rig {
  bus: PciBus;
  pio: AddressSpace;
  mmio: AddressSpace;
  messages: MsiMessage[];
  /** GSI -> current level as the machine sees it. */
  levels: Map<number, boolean>;
  logger: MemoryLogger;
}

export function makeRig(options: Partial<PciBusOptions> = {}): Rig {
  const pio = createPortIoSpace();
  const mmio = createMmioSpace();
  const messages: MsiMessage[] = [];
  const levels = new Map<number, boolean>();
  const logger = new MemoryLogger();
  const bus = new PciBus({
    pio,
    mmio,
    msiVectors: new SignalMsiVectors({ signal: (m) => messages.push(m) }),
    irq: (gsi): InterruptLine => ({
      get level() {
        return levels.get(gsi) ?? false;
      },
      set: (l) => levels.set(gsi, l),
    }),
    windows: WINDOWS,
    logger,
    ...options,
  });
  return { bus, pio, mmio, messages, levels, logger };
}

/** A function whose BARs answer with their index in byte 0 and record writes; it logs (de)activations. */
export class TestFunction extends PciFunction {

  /** Snapshots: everything it keeps is in config space. */
  protected override saveDeviceState(): undefined {
    return undefined;
  }
  readonly events: string[] = [];
  readonly writes: Array<[number, number, number, number]> = [];
  /** What the configWritten hook saw: offset, size, value. */
  readonly configWrites: Array<[number, number, number]> = [];

  constructor(options: Partial<PciFunctionOptions> & { bars?: PciBarDescriptor[] } = {}) {
    super({ name: "test", vendorId: 0x1af4, deviceId: 0x1041, classCode: 0x020000, revision: 1, ...options });
  }

  /** The register file, for checks. */
  get space() {
    return this.config;
  }

  protected override deviceBarHandler(index: number): IoHandler {
    return {
      read: (offset) => (offset === 0 ? 0xa0 + index : offset & 0xff),
      write: (offset, size, value) => {
        this.writes.push([index, offset, size, value]);
      },
    };
  }

  protected override configWritten(offset: number, size: 1 | 2 | 4, value: number): void {
    this.configWrites.push([offset, size, value]);
  }

  override barActivated(w: PciBarWindow): void {
    this.events.push(`+${w.index}@${w.address.toString(16)}`);
  }

  override barDeactivated(w: PciBarWindow): void {
    this.events.push(`-${w.index}@${w.address.toString(16)}`);
  }
}

export const STANDARD_BARS: PciBarDescriptor[] = [
  { index: 0, kind: "io", size: 0x100 },
  { index: 1, kind: "mem32", size: 0x1000 },
  { index: 2, kind: "mem64", size: 0x4000, prefetchable: true },
];

/** Owners of the ranges registered in a space, with their bases, sorted. */
export function ranges(space: AddressSpace): string[] {
  return space.list().map((r) => `${r.owner}@${r.base.toString(16)}+${r.size.toString(16)}`);
}

/** Where rootPortRig puts ECAM, and the bus windows it gives the allocator (io, mem32, mem64). */
export const TREE_ECAM = 0xf000_0000;
const TREE_WINDOWS = {
  io: { base: 0x1000, size: 0xf000 },
  mem32: { base: 0xd000_0000, size: 0x1000_0000 },
  mem64: { base: 2 ** 36, size: 2 ** 34 },
};

/**
 * A bus with CF8 config ports, ECAM at TREE_ECAM (16 buses) and a PCIe root port `rp1` at 00:01.0, plus ECAM
 * accessors by bus, device, function and offset.
 */
export function rootPortRig() {
  const rig = makeRig({ windows: TREE_WINDOWS });
  rig.bus.installConfigPorts();
  rig.bus.installEcam(TREE_ECAM, 16);
  const rp = new PcieRootPort({ name: "rp1", port: 1, slot: 1 });
  rig.bus.attach(rp, { device: 1 });
  const at = (bus: number, dev: number, fn: number, off: number) => TREE_ECAM + bus * 0x10_0000 + dev * 0x8000 + fn * 0x1000 + off;
  const ecam = (bus: number, dev: number, fn: number, off: number, size: 1 | 2 | 4 = 4) => rig.mmio.read(at(bus, dev, fn, off), size) >>> 0;
  const ecamWrite = (bus: number, dev: number, fn: number, off: number, size: 1 | 2 | 4, v: number) => rig.mmio.write(at(bus, dev, fn, off), size, v);
  return { rig, rp, ecam, ecamWrite };
}
