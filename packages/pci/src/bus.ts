import {
  ConfigurationError,
  SharedLine,
  SnapshotError,
  stateData,
  type DeviceState,
  type StateValue,
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
import {
  BridgeControl,
  BridgeReg,
  bridgeForwards,
  DEFAULT_BRIDGE_RESERVE,
  isBridge,
  readBridgeState,
  type BridgeReserve,
  type BridgeState,
} from "./bridge.js";

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

/**
 * One INTx route as the root bus sees it: a bus-0 slot's pin and its GSI. A function behind bridges is routed
 * through the bridge swizzle to the pin of the bus-0 bridge it sits under; `source` then names the function.
 */
export interface IntxRoute {
  readonly address: PciAddress;
  /** 1 = INTA# ... 4 = INTD#. */
  readonly pin: number;
  readonly gsi: number;
  /** The function and its own pin, when it sits behind a bridge (its address has the bus number now assigned). */
  readonly source?: { readonly address: PciAddress; readonly pin: number };
}

/** Where `attach` puts a function. */
export interface PciPlacement {
  /** Device number on its bus (default: the first free one; always 0 behind a PCI Express port). */
  device?: number;
  function?: number;
  /** The bridge whose secondary bus the function sits on (default: the root bus). */
  behind?: PciDevice;
  /** The PCI Express role to give the function (see core's PciAttachContext.express). */
  express?: "endpoint" | "rc-integrated";
}

/** One node of `bus.topology()`: a function, and for a bridge what sits on its secondary bus. */
export interface PciTopologyNode {
  readonly address: PciAddress;
  readonly name: string;
  readonly express: boolean;
  readonly bridge?: {
    readonly secondary: number;
    readonly subordinate: number;
    readonly io?: { readonly base: number; readonly limit: number };
    readonly mem?: { readonly base: number; readonly limit: number };
    readonly pref?: { readonly base: number; readonly limit: number };
  };
  readonly children: readonly PciTopologyNode[];
}

interface Entry extends MappedFunction {
  /** The bus number is the parent's secondary bus number as last programmed (0 on the root bus). */
  address: PciAddress;
  /** Device << 3 | function on its bus. */
  readonly slot: number;
  readonly parent: Entry | undefined;
  /** Functions on this bridge's secondary bus, by slot. */
  readonly children: Map<number, Entry>;
  /** For bridges: what the header says is forwarded (re-read after every write to the bridge). */
  bridge: BridgeState | undefined;
  /** For bridges: where the functions behind it get their initial BAR addresses. */
  allocator: BarAllocator | undefined;
  configSize: number;
  gsi: number | undefined;
  /** Config registers the bus programmed at attach (offset -> size, value), restored on a machine reset. */
  initial: Map<number, [1 | 2 | 4, number]>;
  /** The vector sets the function allocated at attach; closed when it is detached. */
  vectorSets: MsiVectorSet[];
}

/**
 * A PCI / PCI Express bus tree (one segment: bus 0 and the buses behind its bridges). It owns functions by
 * bus/device/function, decodes config
 * transactions from CF8/CFC and ECAM, keeps BAR windows registered where config space decodes them, allocates
 * initial BAR addresses, and routes INTx.
 */
export class PciBus implements ConfigTarget {
  readonly stats: ConfigStats = { dropped: 0, unclaimed: 0 };
  /** Called for every config transaction when set (the --debug trace). */
  trace: ((event: ConfigTraceEvent) => void) | undefined;
  readonly cf8: Cf8Mechanism;
  readonly hostBridge: HostBridge | undefined;
  /** Functions on the root bus, by slot. */
  private readonly root = new Map<number, Entry>();
  private readonly mapper: BarMapper;
  private readonly allocator: BarAllocator;
  private readonly lines = new Map<number, SharedLine>();
  private readonly registrations: Registration[] = [];
  private readonly segment: number;

  constructor(private readonly options: PciBusOptions) {
    this.segment = options.segment ?? 0;
    this.allocator = new BarAllocator(options.windows);
    this.mapper = new BarMapper({ io: options.pio, mem: options.mmio }, options.logger, (fn, space, address, size) =>
      this.forwardedTo(fn as Entry, space, address, size),
    );
    this.cf8 = new Cf8Mechanism(this);
    const gsis = options.intxGsis ?? DEFAULT_INTX_GSIS;
    if (gsis.length === 0) throw new ConfigurationError("PCI: intxGsis must name at least one GSI");
    if (options.hostBridge ?? true) {
      this.hostBridge = new HostBridge();
      this.attach(this.hostBridge, { device: 0, function: 0 });
    }
  }

  /**
   * Places a function on the root bus or behind a bridge (default: the first free device number, function 0),
   * allocates its BARs inside the machine's windows (behind a bridge: inside the windows set aside for that
   * bridge), enables I/O and memory decoding, wires INTx (swizzled through bridges) and MSI, and maps its windows.
   * A bridge gets bus numbers and windows set aside from its parent's (`reserve` on the device, else 4 KiB I/O,
   * 8 MiB memory, 256 MiB 64-bit prefetchable) and forwarding turned on, as firmware would leave it.
   */
  attach(device: PciDevice, at: PciPlacement = {}): PciAddress {
    validateBars(device.name, device.bars, device.rom);
    const parent = at.behind ? this.entryOf(at.behind) : undefined;
    if (at.behind && !parent?.bridge) {
      throw new ConfigurationError(`${device.name}: ${at.behind.name} is not a bridge on this bus`);
    }
    const siblings = parent ? parent.children : this.root;
    const expressPort = parent !== undefined && parent.device.express === true;
    const fn = at.function ?? 0;
    const dev = at.device ?? (expressPort ? 0 : this.freeDevice(device.name, siblings));
    if (!Number.isInteger(dev) || dev < 0 || dev > 31 || !Number.isInteger(fn) || fn < 0 || fn > 7) {
      throw new ConfigurationError(`${device.name}: PCI address ${dev}.${fn} is out of range`);
    }
    if (expressPort && dev !== 0) {
      throw new ConfigurationError(`${device.name}: only device 0 answers behind the PCI Express port ${parent.device.name}`);
    }
    const slot = (dev << 3) | fn;
    const taken = siblings.get(slot);
    const busNumber = parent ? parent.bridge!.secondary : 0;
    if (taken) throw new ConfigurationError(`${device.name}: ${hex2(busNumber)}:${hex2(dev)}.${fn} is taken by ${taken.device.name}`);
    const address: PciAddress = { segment: this.segment, bus: busNumber, device: dev, function: fn };

    // Allocate first so an exhausted window fails before anything is registered.
    const allocator = parent ? parent.allocator! : this.allocator;
    const behindBridge = parent !== undefined;
    const assigned = new Map<number, number>();
    for (const bar of device.bars) {
      // Behind a bridge a non-prefetchable 64-bit BAR belongs in the (32-bit) memory window.
      const kind = behindBridge && bar.kind === "mem64" && !bar.prefetchable ? "mem32" : bar.kind;
      assigned.set(bar.index, allocator.allocate(kind, bar.size, `${device.name}: BAR${bar.index}`));
    }
    if (device.rom) assigned.set(ROM_INDEX, allocator.allocate("mem32", device.rom.size, `${device.name}: ROM`));
    const bridge = isBridge(device);
    let windows: BridgeWindows | undefined;
    if (bridge) windows = this.reserveWindows(device, allocator);

    const entry: Entry = {
      device,
      address,
      slot,
      parent,
      children: new Map(),
      bridge: undefined,
      allocator: windows ? new BarAllocator(windows.allocation) : undefined,
      label: `${formatAddress(address)} ${device.name}`,
      configSize: 0x100,
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
    siblings.set(slot, entry);
    try {
      const line = this.connectIntx(entry);
      device.attach?.({ address, intx: line, msiVectors, ...(at.express ? { express: at.express } : {}) });
      entry.configSize = device.express ? 0x1000 : 0x100;
      if (bridge) entry.bridge = readBridgeState(device);
      this.mapper.add(entry);
      this.program(entry, assigned);
      if (windows) this.programBridge(entry, windows);
      this.checkMapped(entry, assigned);
    } catch (error) {
      this.mapper.remove(entry);
      siblings.delete(slot);
      closeVectors(entry);
      throw error;
    }
    return this.addressOf(entry);
  }

  /** Removes a function: its windows stop decoding, its INTx is deasserted and its MSI vector sets are closed. */
  detach(device: PciDevice): void {
    const entry = this.entryOf(device);
    if (!entry) return;
    for (const child of [...entry.children.values()]) this.detach(child.device);
    this.mapper.remove(entry);
    (entry.parent ? entry.parent.children : this.root).delete(entry.slot);
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

  /** Registers an ECAM window of `busCount` buses (1 MiB each) at `base` in MMIO. Buses above 0 are reached through bridges. */
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

  /**
   * INTx routes for MP and ACPI tables, as bus-0 slot pins: every root-bus function with an interrupt pin, and
   * for a function behind bridges the pin of the bus-0 bridge it swizzles to (with `source` naming it). One
   * route per bus-0 slot pin.
   */
  intxRoutes(): IntxRoute[] {
    const out: IntxRoute[] = [];
    const seen = new Set<string>();
    for (const e of this.sorted()) {
      const pin = e.device.configRead(Reg.INTERRUPT_PIN, 1);
      if (pin < 1 || pin > 4 || e.gsi === undefined) continue;
      const up = rootPin(e, pin);
      const key = `${up.entry.slot}/${up.pin}`;
      if (e.parent) {
        if (seen.has(key)) continue;
        out.push({ address: this.addressOf(up.entry), pin: up.pin, gsi: e.gsi, source: { address: this.addressOf(e), pin } });
      } else out.push({ address: this.addressOf(e), pin, gsi: e.gsi });
      seen.add(key);
    }
    return out;
  }

  /** Attached functions in tree order (a bridge before what sits behind it), with the bus numbers assigned now. */
  functions(): Array<{ address: PciAddress; device: PciDevice }> {
    return this.sorted().map((e) => ({ address: this.addressOf(e), device: e.device }));
  }

  /** The tree of functions as config space describes it now (bus numbers and bridge windows the guest set). */
  topology(): PciTopologyNode[] {
    const node = (e: Entry): PciTopologyNode => ({
      address: this.addressOf(e),
      name: e.device.name,
      express: e.device.express === true,
      ...(e.bridge
        ? {
            bridge: {
              secondary: e.bridge.secondary,
              subordinate: e.bridge.subordinate,
              ...(e.bridge.io ? { io: e.bridge.io } : {}),
              ...(e.bridge.mem ? { mem: e.bridge.mem } : {}),
              ...(e.bridge.pref ? { pref: e.bridge.pref } : {}),
            },
          }
        : {}),
      children: bySlot(e.children).map(node),
    });
    return bySlot(this.root).map(node);
  }

  /** The bridge a function sits behind (undefined on the root bus). */
  parentOf(device: PciDevice): PciDevice | undefined {
    return this.entryOf(device)?.parent?.device;
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

  /**
   * Machine reset: every function is reset and gets its initial BAR addresses, decode bits, and (bridges) bus
   * numbers and windows back.
   */
  reset(): void {
    const all = this.sorted();
    for (const e of all) {
      e.device.reset?.();
      for (const [offset, [size, value]] of e.initial) e.device.configWrite(offset, size, value);
      if (e.bridge) e.bridge = readBridgeState(e.device);
    }
    for (const e of all) this.mapper.sync(e);
  }

  /**
   * Snapshots, step 1 (vCPUs paused): waits for every function's `quiesce` (work in flight completed and
   * published to guest memory).
   */
  async quiesce(): Promise<void> {
    await Promise.all(this.sorted().map((e) => e.device.quiesce?.()));
  }

  /**
   * Snapshots, last step on the VM that was saved, when it goes on running: every function that has a `resume()`
   * (not in core's PciDevice: a virtio function has one) is told the snapshot is over, so it serves what it
   * held back since `quiesce`.
   */
  resume(): void {
    for (const e of this.sorted()) (e.device as PciDevice & { resume?(): void }).resume?.();
  }

  /**
   * Snapshots, step 2: every function's state in tree order, each with its position in the tree (the device and
   * function numbers from the root bus down, which the guest cannot change), the address the guest sees now, and
   * its name. A function without `saveState` makes it throw SnapshotError naming it.
   */
  saveState(): DeviceState {
    const functions: StateValue[] = this.sorted().map((e) => {
      if (!e.device.saveState) throw new SnapshotError(`${e.device.name}: this device cannot be snapshotted (no saveState)`);
      const state = e.device.saveState();
      return {
        position: positionOf(e),
        address: formatAddress(this.addressOf(e)),
        name: e.device.name,
        state: { version: state.version, data: state.data },
      };
    });
    return { version: BUS_STATE_VERSION, data: { functions } };
  }

  /**
   * Restores `saveState` output into a bus built from the same configuration (same functions, attached at the
   * same places): each function is matched by its position and name (another name there, a function missing on
   * either side, or one without `restoreState` is a SnapshotError naming both), restored in tree order (bridges
   * before what sits behind them: bus numbers, windows, bridge control), and then every BAR window is re-decoded
   * as after a config write: handlers registered, `barActivated` called, so each function answers where the
   * guest had programmed it. Call it after guest memory is restored and with the MSI vector factory live (the
   * functions re-program their vectors), before the vCPUs run.
   */
  restoreState(state: DeviceState): void {
    const saved = parseBusState(state);
    const entries = this.sorted();
    const plan = entries.map((e) => {
      const position = positionOf(e);
      const s = saved.get(position);
      const here = `${formatAddress(this.addressOf(e))} ${e.device.name}`;
      if (!s) throw new SnapshotError(`pci: the snapshot has nothing at ${here} (position ${position})`);
      if (s.name !== e.device.name) throw new SnapshotError(`pci: the snapshot has ${s.name} (then ${s.address}) where this machine has ${here}`);
      if (!e.device.restoreState) throw new SnapshotError(`${e.device.name}: this device cannot be restored (no restoreState)`);
      saved.delete(position);
      return { entry: e, state: s.state };
    });
    const extra = [...saved.values()][0];
    if (extra) throw new SnapshotError(`pci: the snapshot has ${extra.name} at ${extra.address}, this machine has no function there`);
    try {
      for (const { entry, state: st } of plan) entry.device.restoreState!(st);
    } finally {
      this.redecode(entries);
    }
  }

  /**
   * Restores one function (`device.restoreState`) and re-decodes its BAR windows, and for a bridge what sits
   * behind it, as after a config write. For machines that restore functions one by one; `restoreState` does all.
   */
  restoreFunction(device: PciDevice, state: DeviceState): void {
    const entry = this.entryOf(device);
    if (!entry) throw new SnapshotError(`${device.name}: not on this bus`);
    if (!device.restoreState) throw new SnapshotError(`${device.name}: this device cannot be restored (no restoreState)`);
    try {
      device.restoreState(state);
    } finally {
      this.redecode([entry, ...this.descendants(entry)]);
    }
  }

  /** After restored config space: bridges re-read, then every window recomputed (both BAR halves count as written). */
  private redecode(entries: readonly Entry[]): void {
    for (const e of entries) if (e.bridge) e.bridge = readBridgeState(e.device);
    for (const e of entries) this.mapper.sync(e);
  }

  // ConfigTarget: decoded transactions from CF8/CFC, ECAM and configRead/configWrite.

  read(bus: number, device: number, fn: number, offset: number, size: number, via: ConfigMechanism): number {
    const entry = this.route(bus, device, fn, offset, size, false, 0, via);
    if (!entry) return onesFor(size);
    return this.readEntry(entry, offset, size, via);
  }

  private readEntry(entry: Entry, offset: number, size: number, via: ConfigMechanism): number {
    const { bus, device, function: fn } = this.addressOf(entry);
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
    this.writeEntry(entry, offset, size, v, via);
  }

  private writeEntry(entry: Entry, offset: number, size: number, v: number, via: ConfigMechanism): void {
    const { bus, device, function: fn } = this.addressOf(entry);
    this.trace?.({ via, write: true, bus, device, function: fn, offset, size, value: v });
    if (offset >= entry.configSize) return;
    const s = size as 1 | 2 | 4;
    if (touchesBarDecoding(offset, size)) {
      const snapshot = this.mapper.before(entry);
      entry.device.configWrite(offset, s, v);
      this.mapper.after(entry, offset, size, snapshot);
    } else entry.device.configWrite(offset, s, v);
    if (entry.bridge && offset < 0x40) this.bridgeWritten(entry);
  }

  /**
   * After a write to a bridge's header: re-reads what it forwards; when windows, command bits or bridge control
   * changed, every function below gets its windows recomputed (they stop or resume decoding); a secondary bus
   * reset (the bit going from 0 to 1) resets every function below.
   */
  private bridgeWritten(entry: Entry): void {
    const before = entry.bridge!;
    const after = readBridgeState(entry.device);
    entry.bridge = after;
    const below = this.descendants(entry);
    const sbr = BridgeControl.SECONDARY_BUS_RESET;
    if ((after.control & sbr) !== 0 && (before.control & sbr) === 0) {
      for (const e of below) {
        e.device.reset?.();
        if (e.bridge) e.bridge = readBridgeState(e.device);
      }
      for (const e of below) this.mapper.sync(e);
      return;
    }
    if (!sameForwarding(before, after)) this.mapper.recheck(below);
  }

  /** Whether every bridge above a function forwards [address, address + size). */
  private forwardedTo(entry: Entry, space: "io" | "mem", address: number, size: number): boolean {
    for (let p = entry.parent; p; p = p.parent) if (!bridgeForwards(p.bridge!, space, address, size)) return false;
    return true;
  }

  /** Every function below a bridge, bridges before what sits behind them. */
  private descendants(entry: Entry): Entry[] {
    const out: Entry[] = [];
    const walk = (e: Entry) => {
      for (const c of bySlot(e.children)) {
        out.push(c);
        walk(c);
      }
    };
    walk(entry);
    return out;
  }

  /** The address a function answers at now: its bus is its parent bridge's secondary bus number. */
  private addressOf(entry: Entry): PciAddress {
    const bus = entry.parent ? entry.parent.bridge!.secondary : 0;
    if (entry.address.bus !== bus) entry.address = { ...entry.address, bus };
    return entry.address;
  }

  /**
   * Finds the function a config cycle reaches: bus 0 is the root bus; another bus is reached through the bridge
   * whose secondary..subordinate range covers it (a type 1 cycle forwarded down, a type 0 cycle on the secondary
   * bus). Behind a PCI Express port only device 0 answers.
   */
  private lookup(bus: number, device: number, fn: number): Entry | undefined {
    const slot = (device << 3) | fn;
    if (bus === 0) return this.root.get(slot);
    let level = this.root;
    for (;;) {
      const bridge = bySlot(level).find((e) => e.bridge && e.bridge.secondary > 0 && e.bridge.secondary <= bus && bus <= e.bridge.subordinate);
      if (!bridge) return undefined;
      if (bridge.bridge!.secondary === bus) return bridge.device.express === true && device !== 0 ? undefined : bridge.children.get(slot);
      level = bridge.children;
    }
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
    const entry = this.lookup(bus, device, fn);
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
    const siblings = entry.parent ? entry.parent.children : this.root;
    const multi = [...siblings.values()].some((e) => e !== entry && e.address.device === entry.address.device);
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
    const write = (offset: number, size: 1 | 2 | 4, value: number) => {
      this.writeEntry(entry, offset, size, toWidth(value, size), "direct");
      entry.initial.set(offset, [size, toWidth(value, size)]); // reset() writes these straight to the device
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
    // Behind bridges the pin is swizzled up to a bus-0 slot pin first (PCI-to-PCI bridge spec, table 9-1).
    const up = rootPin(entry, pin);
    const gsi = this.options.intxRoute
      ? this.options.intxRoute(up.entry.address, up.pin)
      : swizzle(up.entry.address.device, up.pin, this.options.intxGsis ?? DEFAULT_INTX_GSIS);
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

  private freeDevice(name: string, siblings: Map<number, Entry>): number {
    for (let d = 0; d < 32; d++) if (!siblings.has(d << 3)) return d;
    throw new ConfigurationError(`${name}: no free PCI device number on its bus`);
  }

  private entryOf(device: PciDevice): Entry | undefined {
    return this.sorted().find((e) => e.device === device);
  }

  /** Every function, depth first: root bus in slot order, each bridge followed by what sits behind it. */
  private sorted(): Entry[] {
    const out: Entry[] = [];
    const walk = (level: Map<number, Entry>) => {
      for (const e of bySlot(level)) {
        out.push(e);
        walk(e.children);
      }
    };
    walk(this.root);
    return out;
  }

  /** Sets aside a new bridge's windows inside its parent's (aligned to their size, at least the granule). */
  private reserveWindows(device: PciDevice, allocator: BarAllocator): BridgeWindows {
    const r: Required<BridgeReserve> = { ...DEFAULT_BRIDGE_RESERVE, ...(device as { reserve?: BridgeReserve }).reserve };
    const take = (kind: "io" | "mem32" | "mem64", size: number, what: string) =>
      size > 0 ? { base: allocator.allocate(kind, size, `${device.name}: ${what} window`), size } : undefined;
    const io = take("io", r.io, "I/O");
    const mem = take("mem32", r.mem, "memory");
    // Without a 64-bit window above it, the bridge's prefetchable window stays closed (64-bit BARs behind it then
    // share the memory window).
    const pref = allocator.hasMem64 ? take("mem64", r.pref, "prefetchable memory") : undefined;
    const none = { base: 0, size: 0 };
    return {
      io,
      mem,
      pref,
      allocation: { io: io ?? none, mem32: mem ?? none, ...(pref ? { mem64: pref } : {}) },
    };
  }

  /**
   * Firmware's work for a bridge attached before the guest runs: bus numbers (depth first over the whole tree),
   * the windows set aside for it, and I/O, memory and bus-master forwarding on.
   */
  private programBridge(entry: Entry, w: BridgeWindows): void {
    const write = (offset: number, size: 1 | 2 | 4, value: number) => {
      this.writeEntry(entry, offset, size, toWidth(value, size), "direct");
      entry.initial.set(offset, [size, toWidth(value, size)]);
    };
    if (w.io) {
      write(BridgeReg.IO_BASE, 1, (w.io.base >>> 8) & 0xf0);
      write(BridgeReg.IO_LIMIT, 1, ((w.io.base + w.io.size - 1) >>> 8) & 0xf0);
    }
    if (w.mem) {
      write(BridgeReg.MEMORY_BASE, 2, (w.mem.base / 0x1_0000) & 0xfff0);
      write(BridgeReg.MEMORY_LIMIT, 2, ((w.mem.base + w.mem.size - 1) / 0x1_0000) & 0xfff0);
    }
    if (w.pref) {
      const last = w.pref.base + w.pref.size - 1;
      write(BridgeReg.PREF_BASE_UPPER, 4, Math.floor(w.pref.base / 2 ** 32));
      write(BridgeReg.PREF_LIMIT_UPPER, 4, Math.floor(last / 2 ** 32));
      write(BridgeReg.PREF_BASE, 2, Math.floor((w.pref.base % 2 ** 32) / 0x1_0000) & 0xfff0);
      write(BridgeReg.PREF_LIMIT, 2, Math.floor((last % 2 ** 32) / 0x1_0000) & 0xfff0);
    }
    const command = entry.device.configRead(Reg.COMMAND, 2);
    write(Reg.COMMAND, 2, command | Command.IO | Command.MEMORY | Command.BUS_MASTER);
    this.renumber();
  }

  /** Assigns bus numbers depth first (each bridge: secondary = next free, subordinate = last below it). */
  private renumber(): void {
    let next = 1;
    const walk = (level: Map<number, Entry>, primary: number) => {
      for (const e of bySlot(level)) {
        if (!e.bridge) continue;
        const secondary = next++;
        walk(e.children, secondary);
        const value = primary | (secondary << 8) | ((next - 1) << 16);
        const old = e.device.configRead(BridgeReg.PRIMARY_BUS, 4) >>> 0;
        const merged = ((old & 0xff00_0000) | value) >>> 0;
        this.writeEntry(e, BridgeReg.PRIMARY_BUS, 4, merged, "direct");
        e.initial.set(BridgeReg.PRIMARY_BUS, [4, merged]);
      }
    };
    walk(this.root, 0);
  }
}

const BUS_STATE_VERSION = 1;

interface SavedFunction {
  readonly name: string;
  readonly address: string;
  readonly state: DeviceState;
}

/** A function's place in the tree: device.function of each hop from the root bus ("01.0/00.0"). */
function positionOf(entry: Entry): string {
  const hops: string[] = [];
  for (let e: Entry | undefined = entry; e; e = e.parent) hops.unshift(`${hex2(e.slot >> 3)}.${e.slot & 7}`);
  return hops.join("/");
}

/** The functions of a bus state by position; malformed data is a SnapshotError. */
function parseBusState(state: DeviceState): Map<string, SavedFunction> {
  const data = stateData(state, "pci", BUS_STATE_VERSION);
  const list = data.functions;
  if (!Array.isArray(list)) throw new SnapshotError("pci: saved state has no function list");
  const out = new Map<string, SavedFunction>();
  list.forEach((item: StateValue, i: number) => {
    const what = `pci: saved function ${i}`;
    if (!item || typeof item !== "object" || Array.isArray(item)) throw new SnapshotError(`${what}: not an object`);
    const f = item as { readonly [key: string]: StateValue };
    const st = f.state;
    if (typeof f.position !== "string" || typeof f.name !== "string" || typeof f.address !== "string") {
      throw new SnapshotError(`${what}: position, name and address must be strings`);
    }
    if (!st || typeof st !== "object" || Array.isArray(st)) throw new SnapshotError(`${what} (${f.name}): no state`);
    const s = st as { readonly [key: string]: StateValue };
    if (typeof s.version !== "number" || !("data" in s)) throw new SnapshotError(`${what} (${f.name}): state needs version and data`);
    if (out.has(f.position)) throw new SnapshotError(`${what} (${f.name}): position ${f.position} appears twice`);
    out.set(f.position, { name: f.name, address: f.address, state: { version: s.version, data: s.data as StateValue } });
  });
  return out;
}

interface BridgeWindows {
  readonly io: { base: number; size: number } | undefined;
  readonly mem: { base: number; size: number } | undefined;
  readonly pref: { base: number; size: number } | undefined;
  /** Where the functions behind the bridge get their BARs. */
  readonly allocation: PciWindows;
}

function bySlot(level: Map<number, Entry>): Entry[] {
  return [...level.entries()].sort((a, b) => a[0] - b[0]).map(([, e]) => e);
}

/** The bridge swizzle: a pin behind a bridge reaches the bridge's pin (device + pin - 1) % 4 + 1, up to bus 0. */
function rootPin(entry: Entry, pin: number): { entry: Entry; pin: number } {
  let e = entry;
  let p = pin;
  while (e.parent) {
    p = ((e.address.device + p - 1) % 4) + 1;
    e = e.parent;
  }
  return { entry: e, pin: p };
}

function sameForwarding(a: BridgeState, b: BridgeState): boolean {
  const same = (x?: { base: number; limit: number }, y?: { base: number; limit: number }) => x?.base === y?.base && x?.limit === y?.limit;
  const mask = BridgeControl.ISA | BridgeControl.VGA;
  return (
    a.ioEnabled === b.ioEnabled &&
    a.memEnabled === b.memEnabled &&
    same(a.io, b.io) &&
    same(a.mem, b.mem) &&
    same(a.pref, b.pref) &&
    (a.control & mask) === (b.control & mask)
  );
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
