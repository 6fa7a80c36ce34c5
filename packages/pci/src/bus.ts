import {
  ConfigurationError,
  SharedLine,
  type AddressSpace,
  type InterruptController,
  type InterruptLine,
  type IoHandler,
  type Logger,
  type MsiVectorFactory,
  type MsiVectorSet,
  type PciAddress,
  type PciBarWindow,
  type PciDevice,
  type Registration,
} from "@vmm/core";
import { Cf8Mechanism, CF8_ADDRESS_PORT, CF8_DATA_PORT } from "./access/cf8.js";
import { ECAM_BUS_SIZE, ecamHandler } from "./access/ecam.js";
import { isSmallSize, onesFor, toWidth, type ConfigMechanism, type ConfigTarget } from "./access/target.js";
import { BarAllocator, type PciWindows } from "./allocator.js";
import { barOffset, ROM_INDEX, validateBars } from "./bars/bar-layout.js";
import { BarMapper, touchesBarDecoding, type BarConflict, type MappedFunction } from "./bars/bar-mapper.js";
import { Command, HEADER_TYPE_MULTI_FUNCTION, Reg, ROM_ENABLE } from "./config/header.js";
import { HostBridge } from "./host-bridge.js";

/** Default GSIs that INTx pins are swizzled over (the usual PCI interrupt lines of a PC). */
export const DEFAULT_INTX_GSIS: readonly number[] = [5, 9, 10, 11];

export interface PciBusOptions {
  pio: AddressSpace;
  mmio: AddressSpace;
  /**
   * Where attached functions allocate their MSI and MSI-X vectors (the machine's irqfd routes; a
   * `SignalMsiVectors` over a plain MsiController in tests).
   */
  msiVectors: MsiVectorFactory;
  /** The machine's interrupt lines: a GSI lookup or an InterruptController. */
  irq: ((gsi: number) => InterruptLine) | InterruptController;
  windows: PciWindows;
  logger?: Logger;
  /** GSIs for the default INTx swizzle. */
  intxGsis?: readonly number[];
  /** Custom INTx routing: the GSI for a function's pin (1-4). Default: swizzle (device + pin - 1) over intxGsis. */
  intxRoute?: (address: PciAddress, pin: number) => number;
  /** Put a host bridge at 00:00.0 (default true). */
  hostBridge?: boolean;
  /** PCI segment number reported in addresses (default 0). */
  segment?: number;
}

/** One config transaction, for --debug tracing. */
export interface ConfigTraceEvent {
  readonly via: ConfigMechanism;
  readonly write: boolean;
  readonly bus: number;
  readonly device: number;
  readonly function: number;
  readonly offset: number;
  readonly size: number;
  readonly value: number;
  /** Why it was dropped, when it was. */
  readonly dropped?: string;
}

export interface ConfigStats {
  /** Transactions refused: bad width, crossing a dword, enable bit clear, beyond config space. */
  dropped: number;
  /** Transactions to a bus/device/function where nothing is attached (reads all-ones, writes ignored). */
  unclaimed: number;
}

export interface IntxRoute {
  readonly address: PciAddress;
  /** 1 = INTA# ... 4 = INTD#. */
  readonly pin: number;
  readonly gsi: number;
}

interface Entry extends MappedFunction {
  readonly address: PciAddress;
  readonly configSize: number;
  gsi: number | undefined;
  initial: Map<number, number>;
  /** The vector sets the function allocated at attach; closed when it is detached. */
  vectorSets: MsiVectorSet[];
}

/**
 * A PCI / PCI Express bus (bus 0 of one segment). It owns functions by device/function number, decodes config
 * transactions from CF8/CFC and ECAM, keeps BAR windows registered where config space decodes them, allocates
 * initial BAR addresses, and routes INTx.
 */
export class PciBus implements ConfigTarget {
  readonly stats: ConfigStats = { dropped: 0, unclaimed: 0 };
  /** Called for every config transaction when set (the --debug trace). */
  trace: ((event: ConfigTraceEvent) => void) | undefined;
  readonly cf8: Cf8Mechanism;
  readonly hostBridge: HostBridge | undefined;
  private readonly entries = new Map<number, Entry>();
  private readonly mapper: BarMapper;
  private readonly allocator: BarAllocator;
  private readonly lines = new Map<number, SharedLine>();
  private readonly registrations: Registration[] = [];
  private readonly segment: number;

  constructor(private readonly options: PciBusOptions) {
    this.segment = options.segment ?? 0;
    this.allocator = new BarAllocator(options.windows);
    this.mapper = new BarMapper({ io: options.pio, mem: options.mmio }, options.logger);
    this.cf8 = new Cf8Mechanism(this);
    const gsis = options.intxGsis ?? DEFAULT_INTX_GSIS;
    if (gsis.length === 0) throw new ConfigurationError("PCI: intxGsis must name at least one GSI");
    if (options.hostBridge ?? true) {
      this.hostBridge = new HostBridge();
      this.attach(this.hostBridge, { device: 0, function: 0 });
    }
  }

  /**
   * Places a function on the bus (default: the first free device number, function 0), allocates its BARs inside
   * the machine's windows, enables I/O and memory decoding, wires INTx and MSI, and maps its windows.
   */
  attach(device: PciDevice, at: { device?: number; function?: number } = {}): PciAddress {
    validateBars(device.name, device.bars, device.rom);
    const fn = at.function ?? 0;
    const dev = at.device ?? this.freeDevice(device.name);
    if (!Number.isInteger(dev) || dev < 0 || dev > 31 || !Number.isInteger(fn) || fn < 0 || fn > 7) {
      throw new ConfigurationError(`${device.name}: PCI address ${dev}.${fn} is out of range`);
    }
    const key = keyOf(0, dev, fn);
    const taken = this.entries.get(key);
    if (taken) throw new ConfigurationError(`${device.name}: 00:${hex2(dev)}.${fn} is taken by ${taken.device.name}`);
    const address: PciAddress = { segment: this.segment, bus: 0, device: dev, function: fn };

    // Allocate first so an exhausted window fails before anything is registered.
    const assigned = new Map<number, number>();
    for (const bar of device.bars) assigned.set(bar.index, this.allocator.allocate(bar.kind, bar.size, `${device.name}: BAR${bar.index}`));
    if (device.rom) assigned.set(ROM_INDEX, this.allocator.allocate("mem32", device.rom.size, `${device.name}: ROM`));

    const entry: Entry = {
      device,
      address,
      label: `${formatAddress(address)} ${device.name}`,
      configSize: device.express ? 0x1000 : 0x100,
      gsi: undefined,
      initial: new Map(),
      vectorSets: [],
      handler: (index) => this.handlerFor(device, index),
    };
    const msiVectors: MsiVectorFactory = {
      create: (owner, count) => {
        const set = this.options.msiVectors.create(owner, count);
        entry.vectorSets.push(set);
        return set;
      },
    };
    this.entries.set(key, entry);
    try {
      const line = this.connectIntx(entry);
      device.attach?.({ address, intx: line, msiVectors });
      this.mapper.add(entry);
      this.program(entry, assigned);
      this.checkMapped(entry, assigned);
    } catch (error) {
      this.mapper.remove(entry);
      this.entries.delete(key);
      closeVectors(entry);
      throw error;
    }
    return address;
  }

  /** Removes a function: its windows stop decoding, its INTx is deasserted and its MSI vector sets are closed. */
  detach(device: PciDevice): void {
    const entry = [...this.entries.values()].find((e) => e.device === device);
    if (!entry) return;
    this.mapper.remove(entry);
    this.entries.delete(keyOf(entry.address.bus, entry.address.device, entry.address.function));
    closeVectors(entry);
  }

  /** The MSI vector sets a function allocated from `msiVectors` at attach (one per MSI / MSI-X capability). */
  msiVectorSets(device: PciDevice): readonly MsiVectorSet[] {
    return this.entryOf(device)?.vectorSets ?? [];
  }

  /** Registers configuration mechanism #1 at 0xCF8-0xCFF in the port I/O space. */
  installConfigPorts(): void {
    this.registrations.push(this.options.pio.register(CF8_ADDRESS_PORT, 4, "pci config address", this.cf8.addressHandler));
    this.registrations.push(this.options.pio.register(CF8_DATA_PORT, 4, "pci config data", this.cf8.dataHandler));
  }

  /** Registers an ECAM window of `busCount` buses (1 MiB each) at `base` in MMIO. Buses above 0 are empty. */
  installEcam(base: number, busCount = 1): Registration {
    if (!Number.isInteger(busCount) || busCount < 1 || busCount > 256) {
      throw new ConfigurationError(`PCI: ECAM bus count ${busCount} must be 1 to 256`);
    }
    if (base % ECAM_BUS_SIZE !== 0) throw new ConfigurationError(`PCI: ECAM base 0x${base.toString(16)} must be 1 MiB aligned`);
    const reg = this.options.mmio.register(base, busCount * ECAM_BUS_SIZE, "pci ecam", ecamHandler(this));
    this.registrations.push(reg);
    return reg;
  }

  /** A config read as a guest would issue it (for tests and firmware builders). */
  configRead(address: Partial<PciAddress> & { device: number }, offset: number, size: number): number {
    return this.read(address.bus ?? 0, address.device, address.function ?? 0, offset, size, "direct");
  }

  configWrite(address: Partial<PciAddress> & { device: number }, offset: number, size: number, value: number): void {
    this.write(address.bus ?? 0, address.device, address.function ?? 0, offset, size, value, "direct");
  }

  /** INTx routes of every function with an interrupt pin, for MP and ACPI tables. */
  intxRoutes(): IntxRoute[] {
    const out: IntxRoute[] = [];
    for (const e of this.sorted()) {
      const pin = e.device.configRead(Reg.INTERRUPT_PIN, 1);
      if (pin >= 1 && pin <= 4 && e.gsi !== undefined) out.push({ address: e.address, pin, gsi: e.gsi });
    }
    return out;
  }

  /** Attached functions in address order. */
  functions(): Array<{ address: PciAddress; device: PciDevice }> {
    return this.sorted().map((e) => ({ address: e.address, device: e.device }));
  }

  /** The BAR windows of a function that are decoded now. */
  windows(device: PciDevice): PciBarWindow[] {
    const e = this.entryOf(device);
    return e ? this.mapper.activeWindows(e) : [];
  }

  /** The windows config space decodes for a function (decode-gated), including shadowed or blocked ones. */
  decodedWindows(device: PciDevice): PciBarWindow[] {
    const e = this.entryOf(device);
    return e ? this.mapper.desiredWindows(e) : [];
  }

  /** Windows config space enables but another function's more recent window covers. */
  conflicts(): readonly BarConflict[] {
    return this.mapper.conflicts();
  }

  /** Re-reads a function's BARs and command register after the device changed them itself (e.g. an FLR). */
  refresh(device: PciDevice): void {
    const e = this.entryOf(device);
    if (e) this.mapper.sync(e);
  }

  /** Machine reset: every function is reset and gets its initial BAR addresses and decode bits back. */
  reset(): void {
    for (const e of this.sorted()) {
      e.device.reset?.();
      for (const [offset, value] of e.initial) e.device.configWrite(offset, offset === Reg.COMMAND ? 2 : offset === Reg.INTERRUPT_LINE ? 1 : 4, value);
      this.mapper.sync(e);
    }
  }

  // ConfigTarget: decoded transactions from CF8/CFC, ECAM and configRead/configWrite.

  read(bus: number, device: number, fn: number, offset: number, size: number, via: ConfigMechanism): number {
    const entry = this.route(bus, device, fn, offset, size, false, 0, via);
    if (!entry) return onesFor(size);
    // toWidth: a foreign PciDevice may answer with int32 or with bits above the width.
    let value = offset >= entry.configSize ? 0 : toWidth(entry.device.configRead(offset, size as 1 | 2 | 4), size);
    if (offset <= Reg.HEADER_TYPE && offset + size > Reg.HEADER_TYPE) value = this.withMultiFunctionBit(entry, value, offset);
    this.trace?.({ via, write: false, bus, device, function: fn, offset, size, value });
    return value;
  }

  write(bus: number, device: number, fn: number, offset: number, size: number, value: number, via: ConfigMechanism): void {
    const v = toWidth(value, size);
    const entry = this.route(bus, device, fn, offset, size, true, v, via);
    if (!entry) return;
    this.trace?.({ via, write: true, bus, device, function: fn, offset, size, value: v });
    if (offset >= entry.configSize) return;
    const s = size as 1 | 2 | 4;
    if (!touchesBarDecoding(offset, size)) return entry.device.configWrite(offset, s, v);
    const snapshot = this.mapper.before(entry);
    entry.device.configWrite(offset, s, v);
    this.mapper.after(entry, offset, size, snapshot);
  }

  dropped(reason: string, via: ConfigMechanism): void {
    this.stats.dropped++;
    this.trace?.({ via, write: false, bus: -1, device: -1, function: -1, offset: -1, size: 0, value: 0, dropped: reason });
  }

  private route(
    bus: number,
    device: number,
    fn: number,
    offset: number,
    size: number,
    write: boolean,
    value: number,
    via: ConfigMechanism,
  ): Entry | undefined {
    const bad =
      !isSmallSize(size) ? `${size}-byte access`
      : !Number.isInteger(offset) || offset < 0 || offset + size > 0x1000 ? `offset 0x${offset.toString(16)} outside config space`
      : (offset & 3) + size > 4 ? `${size}-byte access at 0x${offset.toString(16)} crosses a dword`
      : undefined;
    if (bad) {
      this.stats.dropped++;
      this.trace?.({ via, write, bus, device, function: fn, offset, size, value, dropped: bad });
      return undefined;
    }
    const entry = this.entries.get(keyOf(bus, device, fn));
    if (!entry) {
      this.stats.unclaimed++;
      if (this.trace) this.trace({ via, write, bus, device, function: fn, offset, size, value: write ? value : onesFor(size), dropped: "no function" });
    }
    return entry;
  }

  /** The bus owns the header type's multi-function bit: set when any other function shares the device number. */
  private withMultiFunctionBit(entry: Entry, value: number, offset: number): number {
    const shift = 8 * (Reg.HEADER_TYPE - offset);
    const byte = (value >>> shift) & 0xff & ~HEADER_TYPE_MULTI_FUNCTION;
    const multi = [...this.entries.values()].some((e) => e !== entry && e.address.device === entry.address.device);
    const patched = multi ? byte | HEADER_TYPE_MULTI_FUNCTION : byte;
    return ((value & ~(0xff << shift)) | (patched << shift)) >>> 0;
  }

  private handlerFor(device: PciDevice, index: number): IoHandler | undefined {
    if (index === ROM_INDEX) return device.rom ? romHandler(device.rom.bytes) : undefined;
    const h = device.barHandler?.(index);
    return h && unsignedHandler(h);
  }

  /** Writes the allocated BAR addresses and turns decoding on, through the normal config write path. */
  private program(entry: Entry, assigned: Map<number, number>): void {
    const { device } = entry;
    const write = (offset: number, size: number, value: number) => {
      this.write(0, entry.address.device, entry.address.function, offset, size, value, "direct");
      entry.initial.set(offset, toWidth(value, size)); // reset() writes these straight to the device
    };
    let command = 0;
    for (const bar of device.bars) {
      const address = assigned.get(bar.index)!;
      const off = barOffset(bar.index);
      write(off, 4, address % 2 ** 32);
      if (bar.kind === "mem64") write(off + 4, 4, Math.floor(address / 2 ** 32));
      command |= bar.kind === "io" ? Command.IO : Command.MEMORY;
    }
    if (device.rom) {
      write(Reg.ROM_BAR, 4, (assigned.get(ROM_INDEX)! & ~ROM_ENABLE) >>> 0); // & of an address >= 2 GiB is negative
      command |= Command.MEMORY;
    }
    if (entry.gsi !== undefined) write(Reg.INTERRUPT_LINE, 1, entry.gsi & 0xff);
    if (command) write(Reg.COMMAND, 2, (device.configRead(Reg.COMMAND, 2) | command) & 0xffff);
  }

  /** After attach every window must be decoded where it was assigned: a clash is a configuration error. */
  private checkMapped(entry: Entry, assigned: Map<number, number>): void {
    const active = this.mapper.activeWindows(entry);
    for (const [index, address] of assigned) {
      if (index === ROM_INDEX) continue; // the ROM BAR starts disabled
      if (active.some((w) => w.index === index && w.address === address)) continue;
      throw new ConfigurationError(
        `${entry.device.name}: BAR${index} at 0x${address.toString(16)} cannot be mapped (the range is taken)`,
      );
    }
  }

  private connectIntx(entry: Entry): InterruptLine {
    const pin = entry.device.configRead(Reg.INTERRUPT_PIN, 1);
    if (pin < 1 || pin > 4) return { level: false, set: () => {} };
    const gsi = this.options.intxRoute
      ? this.options.intxRoute(entry.address, pin)
      : swizzle(entry.address.device, pin, this.options.intxGsis ?? DEFAULT_INTX_GSIS);
    entry.gsi = gsi;
    let shared = this.lines.get(gsi);
    if (!shared) {
      const irq = this.options.irq;
      const line = typeof irq === "function" ? irq(gsi) : irq.line(gsi);
      shared = new SharedLine(line);
      this.lines.set(gsi, shared);
    }
    return shared.source();
  }

  private freeDevice(name: string): number {
    for (let d = 0; d < 32; d++) if (!this.entries.has(keyOf(0, d, 0))) return d;
    throw new ConfigurationError(`${name}: no free PCI device number on bus 0`);
  }

  private entryOf(device: PciDevice): Entry | undefined {
    return [...this.entries.values()].find((e) => e.device === device);
  }

  private sorted(): Entry[] {
    return [...this.entries.entries()].sort((a, b) => a[0] - b[0]).map(([, e]) => e);
  }
}

/** The conventional INTx swizzle: pin (1-4) rotated by the device number, over the given GSIs. */
export function swizzle(device: number, pin: number, gsis: readonly number[]): number {
  return gsis[(device + pin - 1) % gsis.length]!;
}

export function formatAddress(a: PciAddress): string {
  const seg = a.segment ? `${a.segment.toString(16).padStart(4, "0")}:` : "";
  return `${seg}${hex2(a.bus)}:${hex2(a.device)}.${a.function}`;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, "0");
}

function closeVectors(entry: Entry): void {
  for (const set of entry.vectorSets.splice(0)) set.close();
}

function keyOf(bus: number, device: number, fn: number): number {
  return (bus << 8) | (device << 3) | fn;
}

/**
 * A BAR handler whose values are unsigned of the access width both ways, whatever the caller or the device does
 * with bit 31 (a negative value would break a device's BigInt arithmetic or reach the guest as garbage).
 */
function unsignedHandler(h: IoHandler): IoHandler {
  const out: IoHandler = {
    read: (o, s) => toWidth(h.read(o, s), s),
    write: (o, s, v) => h.write(o, s, toWidth(v, s)),
  };
  if (h.read64) out.read64 = (o) => BigInt.asUintN(64, h.read64!(o));
  if (h.write64) out.write64 = (o, v) => h.write64!(o, BigInt.asUintN(64, v));
  return out;
}

/** Expansion ROM contents: read-only, zero past the image. */
function romHandler(bytes: Uint8Array): IoHandler {
  return {
    read(offset, size) {
      let v = 0;
      for (let i = size - 1; i >= 0; i--) v = v * 256 + (bytes[offset + i] ?? 0);
      return v;
    },
    write() {},
  };
}
