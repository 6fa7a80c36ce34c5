import {
  ConfigurationError,
  type Handle,
  type IoHandler,
  type MsiVectorFactory,
  nextPowerOfTwo,
  type PciAddress,
  type PciAttachContext,
  type PciBarDescriptor,
  type PciBarWindow,
  type PciCapability,
  type PciDevice,
  type PciExtendedCapability,
  type SmallAccessSize,
  SnapshotError,
  type DeviceState,
} from "@vmm/core";
import { toWidth } from "./access/target.js";
import { barRegisters, romRegister, validateBars } from "./bars/bar-layout.js";
import { CapabilityChain } from "./capabilities/chain.js";
import {
  EXPRESS_CAPABILITY_ID,
  EXPRESS_TYPE_CODE,
  expressCapability,
  type ExpressDeviceType,
  type ExpressPortOptions,
} from "./capabilities/express.js";
import { MsiCapability } from "./capabilities/msi.js";
import { MsixCapability } from "./capabilities/msix.js";
import { ConfigSpace } from "./config/config-space.js";
import { Command, Reg, Status, type HeaderRegister, type0Header } from "./config/header.js";
import { FunctionIntx } from "./intx.js";
import { decodeFunctionState, encodeFunctionState } from "./snapshot/function-state.js";

export interface PciFunctionOptions {
  /** Instance name used in errors and traces. */
  name: string;
  vendorId: number;
  deviceId: number;
  /** 24-bit class code: base class, subclass, programming interface. */
  classCode: number;
  revision?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  bars?: readonly PciBarDescriptor[];
  /** The device's handlers per BAR index, as an alternative to overriding `deviceBarHandler`. */
  barHandlers?: Readonly<Record<number, IoHandler>>;
  /** 0 = no INTx, 1-4 = INTA#-INTD#. */
  interruptPin?: 0 | 1 | 2 | 3 | 4;
  /**
   * Makes it a PCI Express function: 4 KiB config space and a version 1 PCI Express capability. Without it the
   * function is conventional PCI until the bus places it as a PCI Express endpoint (below a root port, or as a
   * root-complex integrated endpoint), which adds the capability at attach.
   */
  express?: { type: ExpressDeviceType } & ExpressPortOptions;
  /** Expansion ROM contents; the ROM BAR size is the next power of two of at least 2 KiB. */
  rom?: Uint8Array;
}

/** A quirk window: a handler laid over a sub-range of a BAR (see `PciFunction.overlayBar`). */
export interface BarOverlay {
  /** Where the window starts in the BAR, and its length in bytes. */
  readonly offset: number;
  readonly size: number;
  /** Names the window in errors. */
  readonly name: string;
  /** Serves the accesses inside the window, with window-relative offsets. */
  readonly handler: IoHandler;
}

const u = (n: number, bits: number) => Number.isInteger(n) && n >= 0 && n < 2 ** bits;

/**
 * Base class of emulated PCI functions: a type 0 header with per-bit masks, BAR registers (writable mask
 * ~(size-1), so sizing needs no special case), capability chaining, INTx and MSI/MSI-X delivery. The bus decides
 * which BAR windows are decoded; subclasses only serve BAR-relative accesses.
 */
export class PciFunction implements PciDevice {
  readonly name: string;
  readonly bars: readonly PciBarDescriptor[];
  readonly rom?: { readonly size: number; readonly bytes: Uint8Array };
  /** True for a PCI Express function (built as one, or placed as one at attach): 4 KiB config space. */
  get express(): boolean {
    return this.expressKind !== undefined;
  }
  /** The PCI Express device/port type, once the function is PCI Express. */
  get expressType(): ExpressDeviceType | undefined {
    return this.expressKind;
  }
  private expressKind: ExpressDeviceType | undefined;
  /** The PCI Express capability, when there is one. */
  private expressCap: PciCapability | undefined;
  /** INTx output: `this.intx.set(true)` asserts (status bit 3 follows; the line obeys command.INTx-disable). */
  readonly intx: FunctionIntx;
  /** The config space register file; subclasses may define extra registers with `config.file.set/mask`. */
  protected readonly config: ConfigSpace;
  protected readonly capabilities: CapabilityChain;
  /** The function's bus address, once attached. */
  address: PciAddress | undefined;
  /** Where MSI and MSI-X vectors come from, once attached. */
  protected msiVectors: MsiVectorFactory | undefined;
  private msiCap: MsiCapability | undefined;
  private msixCap: MsixCapability | undefined;
  private readonly handlers: Readonly<Record<number, IoHandler>>;
  private readonly connectable: Array<MsiCapability | MsixCapability> = [];
  /** Quirk windows per BAR index, in the arrays the composed handlers read on every access. */
  private readonly overlays = new Map<number, Region[]>();

  constructor(options: PciFunctionOptions) {
    const o = options;
    if (!o.name) throw new ConfigurationError("a PCI function needs a name");
    const fail = (what: string) => new ConfigurationError(`${o.name}: ${what}`);
    if (!u(o.vendorId, 16) || !u(o.deviceId, 16)) throw fail("vendor and device IDs are 16-bit numbers");
    if (!u(o.classCode, 24)) throw fail("the class code is a 24-bit number");
    if (!u(o.revision ?? 0, 8)) throw fail("the revision is a byte");
    if (!u(o.subsystemVendorId ?? 0, 16) || !u(o.subsystemId ?? 0, 16)) throw fail("subsystem IDs are 16-bit numbers");
    const pin = o.interruptPin ?? 0;
    if (!u(pin, 3) || pin > 4) throw fail("the interrupt pin is 0 (none) to 4 (INTD#)");
    this.name = o.name;
    this.bars = [...(o.bars ?? [])];
    if (o.rom) {
      const size = Math.max(2048, nextPowerOfTwo(o.rom.length));
      this.rom = { size, bytes: o.rom };
    }
    validateBars(o.name, this.bars, this.rom);
    this.expressKind = o.express?.type;
    this.handlers = o.barHandlers ?? {};
    // Always 4 KiB of storage: a conventional function may become PCI Express when the bus places it so. The bus
    // serves only the first 256 bytes of a conventional function.
    this.config = new ConfigSpace(4096);
    this.capabilities = new CapabilityChain(o.name, this.config, () => this.express);
    this.intx = new FunctionIntx((level) => {
      const status = this.config.file.read(Reg.STATUS, 2);
      this.config.file.set(Reg.STATUS, 2, level ? status | Status.INTERRUPT : status & ~Status.INTERRUPT);
    });

    const header = type0Header({
      vendorId: o.vendorId,
      deviceId: o.deviceId,
      classCode: o.classCode,
      revision: o.revision ?? 0,
      subsystemVendorId: o.subsystemVendorId ?? 0,
      subsystemId: o.subsystemId ?? 0,
      interruptPin: pin,
      express: this.express,
    });
    for (const r of header) this.defineRegister(r);
    for (const bar of this.bars) {
      for (const r of barRegisters(bar)) this.defineRegister({ name: `BAR${bar.index}`, size: 4, ...r });
    }
    if (this.rom) this.defineRegister({ name: "ROM BAR", size: 4, ...romRegister(this.rom.size) });
    if (o.express) this.addCapability((this.expressCap = expressCapability(o.express.type, o.express)));
  }

  /**
   * Makes the function a PCI Express function of `type` (what the bus does at attach when it places the function
   * below a root port or as an RC integrated endpoint): adds the PCI Express capability, or rewrites the
   * device/port type of the one it has, and opens the 4 KiB config space (an empty extended list at 0x100).
   */
  placeExpress(type: ExpressDeviceType): void {
    if (!this.expressCap) {
      this.addCapability((this.expressCap = expressCapability(type)));
    } else {
      // Capabilities register (body offset 0), bits 7:4: the device/port type.
      const body = this.expressCap.body;
      body[0] = (body[0]! & 0x0f) | (EXPRESS_TYPE_CODE[type] << 4);
    }
    this.expressKind = type;
    // PCI Express hardwires the latency timer to 0.
    this.config.file.set(Reg.LATENCY_TIMER, 1, 0);
    this.config.file.mask(Reg.LATENCY_TIMER, 1, 0, 0);
  }

  /**
   * Adds a standard capability and returns its offset: at `at` when given (a dword-aligned offset in 0x40-0xFF
   * that no other capability covers; a passthrough function keeps its device's layout), else chained from 0x40.
   * MSI and MSI-X are wired up. A PCI Express capability (ID 0x10) added to a function that has none becomes the
   * function's own: `placeExpress` then rewrites its device/port type instead of adding a second one (the
   * function turns PCI Express only when built or placed so).
   */
  addCapability(cap: PciCapability, at?: number): number {
    if (cap instanceof MsixCapability) this.checkMsixPlacement(cap);
    if ((cap instanceof MsiCapability && this.msiCap) || (cap instanceof MsixCapability && this.msixCap)) {
      throw new ConfigurationError(`${this.name}: only one ${cap instanceof MsiCapability ? "MSI" : "MSI-X"} capability`);
    }
    const offset = this.capabilities.add(cap, at);
    if (cap.id === EXPRESS_CAPABILITY_ID && !this.expressCap) this.expressCap = cap;
    if (cap instanceof MsiCapability) this.msiCap = cap;
    if (cap instanceof MsixCapability) this.msixCap = cap;
    if (cap instanceof MsiCapability || cap instanceof MsixCapability) {
      this.connectable.push(cap);
      cap.setBusMaster(this.busMasterEnabled);
      if (this.msiVectors) this.connectVectors(cap, this.msiVectors);
    }
    return offset;
  }

  /**
   * Adds an extended capability (PCI Express functions only) and returns its offset: at `at` when given (dword
   * aligned in 0x100-0xFFF; the first one at 0x100), else from 0x100.
   */
  addExtendedCapability(cap: PciExtendedCapability, at?: number): number {
    return this.capabilities.addExtended(cap, at);
  }

  /** Unlinks a standard capability from the chain (its bytes stay where they are). */
  hideCapability(offset: number): void {
    this.capabilities.hide(offset);
  }

  /** Hides an extended capability; the one at 0x100 keeps its next pointer under a null ID. */
  hideExtendedCapability(offset: number): void {
    this.capabilities.hideExtended(offset);
  }

  get msi(): MsiCapability | undefined {
    return this.msiCap;
  }

  get msix(): MsixCapability | undefined {
    return this.msixCap;
  }

  configRead(offset: number, size: SmallAccessSize): number {
    return this.config.read(offset, size);
  }

  /** True while command bit 2 (Bus Master Enable) is set: the function may write guest memory and signal MSI. */
  get busMasterEnabled(): boolean {
    return (this.config.file.read(Reg.COMMAND, 2) & Command.BUS_MASTER) !== 0;
  }

  configWrite(offset: number, size: SmallAccessSize, value: number): void {
    value = toWidth(value, size); // configWritten hooks see the unsigned value of the access width
    const bme = this.busMasterEnabled;
    this.config.write(offset, size, value);
    if (offset <= Reg.COMMAND + 1 && offset + size > Reg.COMMAND + 1) {
      this.intx.setDisabled((this.config.file.read(Reg.COMMAND, 2) & Command.INTX_DISABLE) !== 0);
    }
    if (this.busMasterEnabled !== bme) this.busMasterSet(this.busMasterEnabled);
    this.configWritten(offset, size, value);
  }

  /**
   * The one handler the bus registers for a BAR (offsets relative to the BAR), composed in layers; an access goes
   * to the topmost layer that covers it, and one that straddles a layer's edge is split so each side gets its
   * own bytes:
   *
   *     MSI-X table, PBA     the framework, when the capability lives in this BAR
   *     overlay windows      overlayBar(index, ...): quirks, window-relative offsets
   *     device handler       deviceBarHandler(index) / the barHandlers option
   *
   * Subclasses override `deviceBarHandler`, not this. Undefined when no layer serves the BAR (the function maps
   * it itself in `barActivated`).
   */
  barHandler(index: number): IoHandler | undefined {
    const device = this.deviceBarHandler(index);
    const msix = this.msixRegions(index);
    const overlays = this.overlays.get(index);
    if (!device && msix.length === 0 && !overlays?.length) return undefined;
    const h = overlayHandler(this.overlayList(index), device ?? ABSENT); // live: windows may come and go
    return msix.length ? overlayHandler(msix, h) : h;
  }

  /**
   * Lays `overlay.handler` over `[offset, offset + size)` of a BAR: accesses inside the window reach it with
   * window-relative offsets, the rest of the BAR still reaches the device's handler, and the MSI-X table and PBA
   * stay on top of both. It takes effect at once on a trapped BAR; on a BAR the device maps itself (no handler),
   * at its next decode. Windows of one BAR may not overlap. `remove()` takes the window away again.
   */
  overlayBar(index: number, overlay: BarOverlay): Handle {
    const bar = this.bars.find((b) => b.index === index);
    const what = `${this.name}: overlay "${overlay.name}" on BAR${index}`;
    if (!bar) throw new ConfigurationError(`${what}: the function has no BAR${index}`);
    const { offset, size } = overlay;
    if (!Number.isInteger(offset) || !Number.isInteger(size) || offset < 0 || size < 1 || offset + size > bar.size) {
      throw new ConfigurationError(`${what}: 0x${offset.toString(16)}+0x${size.toString(16)} is not inside the BAR (0x${bar.size.toString(16)} bytes)`);
    }
    const list = this.overlayList(index);
    const clash = list.find((r) => offset < r.hi && r.lo < offset + size);
    if (clash) throw new ConfigurationError(`${what}: overlaps "${clash.name}"`);
    const region: Region = { lo: offset, hi: offset + size, h: overlay.handler, name: overlay.name };
    list.push(region);
    list.sort((a, b) => a.lo - b.lo);
    return {
      remove: () => {
        const at = list.indexOf(region);
        if (at >= 0) list.splice(at, 1);
      },
    };
  }

  /** The device's own handler for a BAR (offsets relative to the BAR). Override it, or pass `barHandlers`. */
  protected deviceBarHandler(index: number): IoHandler | undefined {
    return this.handlers[index];
  }

  barActivated(_window: PciBarWindow): void {}
  barDeactivated(_window: PciBarWindow): void {}

  /**
   * Called by the bus. Subclasses that override it must call `super.attach(context)`. MSI and MSI-X capabilities
   * allocate their vectors from `context.msiVectors` here, once.
   */
  attach(context: PciAttachContext): void {
    if (context.express) this.placeExpress(context.express);
    this.address = context.address;
    this.msiVectors = context.msiVectors;
    for (const cap of this.connectable) this.connectVectors(cap, context.msiVectors);
    this.intx.connect(context.intx);
    this.attached(context);
  }

  /**
   * Function reset: command and error status cleared, MSI/MSI-X disabled and masked, INTx deasserted. BAR values
   * and the interrupt line stay (the bus reprograms BARs on a machine reset).
   */
  reset(): void {
    const bme = this.busMasterEnabled;
    this.config.file.set(Reg.COMMAND, 2, 0);
    this.config.file.set(Reg.STATUS, 2, this.config.file.read(Reg.STATUS, 2) & ~Status.ERRORS_W1C);
    this.intx.setDisabled(false);
    this.intx.set(false);
    this.msixCap?.reset();
    this.msiCap?.reset();
    if (bme) this.busMasterSet(false);
  }

  /**
   * Snapshots: the function's own state as versioned JSON data. Saved here, for every subclass: the config
   * space's stored bytes (register file and every capability body; not the masks, which the constructor
   * defines), the PCI Express type it was placed as, the INTx level, MSI's private pending bits and the MSI-X
   * table and PBA; then the subclass's `saveDeviceState()`. A function with a physical device behind its config
   * space (passthrough) refuses with SnapshotError.
   */
  saveState(): DeviceState {
    if (this.config.backed) throw new SnapshotError(`${this.name}: a passthrough function cannot be snapshotted`);
    const stored = this.config.storedBytes();
    return encodeFunctionState({
      file: stored.file,
      overlays: stored.overlays,
      express: this.expressKind,
      intx: this.intx.level,
      msiHeld: this.msiCap?.heldPending,
      msix: this.msixCap?.saveTables(),
      device: this.saveDeviceState(),
    });
  }

  /**
   * Restores `saveState` output into this function, built from the same options and attached where the original
   * was: the bytes go back, INTx is driven at the saved level (and the line follows the interrupt-disable bit),
   * MSI and MSI-X vectors are programmed from the restored registers and table (the platform's routes re-created
   * through the MsiVectorFactory), then `restoreDeviceState` runs. What this class keeps is all checked before anything changes:
   * another version, another kind of function (IDs, class, capability layout, PCI Express type, MSI-X table
   * size) or malformed data is a SnapshotError naming the function. BAR windows are the bus's: restore through
   * `PciBus.restoreState` / `restoreFunction`, which re-decodes them afterwards.
   */
  restoreState(state: DeviceState): void {
    const parts = decodeFunctionState(state, {
      name: this.name,
      file: this.config.file,
      overlayLengths: this.config.overlayLengths(),
      express: this.expressKind,
      msi: this.msiCap !== undefined,
      msix: this.msixCap && { tableSize: this.msixCap.tableSize, pbaSize: this.msixCap.pbaSize },
    });
    this.config.restoreBytes(parts.file, parts.overlays);
    this.intx.setDisabled((this.config.file.read(Reg.COMMAND, 2) & Command.INTX_DISABLE) !== 0);
    this.intx.set(parts.intx);
    const bme = this.busMasterEnabled;
    if (this.msiCap) this.msiCap.restorePending(parts.msiHeld ?? 0, bme);
    if (this.msixCap && parts.msix) this.msixCap.restoreTables(parts.msix.table, parts.msix.pba, bme);
    this.restoreDeviceState(parts.device);
  }

  /**
   * Hook for `saveState`: the subclass's own state (its registers outside config space, queues, backends'
   * positions), with its own layout version; undefined when it has none. Called with the vCPUs paused, after
   * `quiesce`. A subclass must override it to be snapshotted, returning undefined when everything it keeps is in
   * config space: by default the snapshot is refused, naming the function, because this class cannot know what a
   * subclass keeps elsewhere (a plugin device that never thought of snapshots is refused, not half saved).
   */
  protected saveDeviceState(): DeviceState | undefined {
    throw new SnapshotError(`${this.name}: this device cannot be snapshotted (${this.constructor.name} does not save its own state: it overrides no saveDeviceState)`);
  }

  /**
   * Hook for `restoreState`, after config space, INTx and MSI/MSI-X are back (so `busMasterEnabled`, `msix` and
   * the registers read as saved): `state` is what `saveDeviceState` returned (undefined when it returned
   * nothing). Check it as untrusted data (core's `stateData`, `stateInt`, `decodeBytes`) and throw SnapshotError
   * for anything unusable; bring host-side plumbing in line. Called before the bus re-decodes the BARs, so the
   * `barActivated` that follows sees the restored state.
   */
  protected restoreDeviceState(state: DeviceState | undefined): void {
    if (state !== undefined) throw new SnapshotError(`${this.name}: the saved state has device state this function does not know`);
  }

  /**
   * Hook after a config write or reset changed Bus Master Enable, with the new state (after the write is applied,
   * before `configWritten`). Devices stop or resume DMA here.
   */
  protected busMasterChanged(_enabled: boolean): void {}

  /** Hook after a guest config write (already applied to the register file). */
  protected configWritten(_offset: number, _size: SmallAccessSize, _value: number): void {}

  /** Hook after attach (the address, INTx and MSI vectors are set). */
  protected attached(_context: PciAttachContext): void {}

  /** Declares a register in the file: initial value and masks. */
  protected defineRegister(r: HeaderRegister): void {
    this.config.file.set(r.offset, r.size, r.initial);
    this.config.file.mask(r.offset, r.size, r.writable ?? 0, r.writeOneToClear ?? 0);
  }

  /** MSI and MSI-X are memory writes: they follow Bus Master Enable (INTx does not). Then the device hears it. */
  private busMasterSet(enabled: boolean): void {
    for (const cap of this.connectable) cap.setBusMaster(enabled);
    this.busMasterChanged(enabled);
  }

  private connectVectors(cap: MsiCapability | MsixCapability, factory: MsiVectorFactory): void {
    cap.connect(factory.create(`${this.name} ${cap instanceof MsixCapability ? "MSI-X" : "MSI"}`, cap.vectors));
  }

  private overlayList(index: number): Region[] {
    let list = this.overlays.get(index);
    if (!list) this.overlays.set(index, (list = []));
    return list;
  }

  /** The MSI-X table and PBA windows in BAR `index`. */
  private msixRegions(index: number): Region[] {
    const msix = this.msixCap;
    const regions: Region[] = [];
    if (msix?.tableBar === index) regions.push({ lo: msix.tableOffset, hi: msix.tableOffset + msix.tableSize, h: msix.tableHandler, name: "MSI-X table" });
    if (msix?.pbaBar === index) regions.push({ lo: msix.pbaOffset, hi: msix.pbaOffset + msix.pbaSize, h: msix.pbaHandler, name: "MSI-X PBA" });
    return regions;
  }

  private checkMsixPlacement(cap: MsixCapability): void {
    for (const [what, index, offset, size] of [
      ["table", cap.tableBar, cap.tableOffset, cap.tableSize],
      ["PBA", cap.pbaBar, cap.pbaOffset, cap.pbaSize],
    ] as const) {
      const bar = this.bars.find((b) => b.index === index);
      if (!bar || bar.kind === "io") {
        throw new ConfigurationError(`${this.name}: the MSI-X ${what} needs memory BAR${index}`);
      }
      if (offset + size > bar.size) {
        throw new ConfigurationError(`${this.name}: the MSI-X ${what} does not fit in BAR${index} (${bar.size} bytes)`);
      }
    }
  }
}

interface Region {
  lo: number;
  hi: number;
  h: IoHandler;
  name: string;
}

/** Bytes no layer serves: read 0, writes ignored. */
const ABSENT: IoHandler = { read: () => 0, write: () => {} };

/**
 * Routes accesses inside `regions` (disjoint; read on every access, so the array may change) to their handlers
 * (region-relative) and the rest to `inner`. An access that straddles a region's edge is split, so each side gets
 * exactly its own bytes.
 */
function overlayHandler(regions: readonly Region[], innerH: IoHandler): IoHandler {
  /** The one owner of [o, o+n) with its offset, or undefined when the access straddles an edge. */
  const owner = (o: number, n: number): [IoHandler, number] | undefined => {
    for (const r of regions) {
      if (o >= r.lo && o + n <= r.hi) return [r.h, o - r.lo];
      if (o < r.hi && o + n > r.lo) return undefined;
    }
    return [innerH, o];
  };
  /** Straddling accesses, as runs of 1, 2 or 4 bytes that each have one owner. */
  const runs = (o: number, n: number): Array<[number, SmallAccessSize]> => {
    const out: Array<[number, SmallAccessSize]> = [];
    let at = o;
    while (at < o + n) {
      const left = o + n - at;
      const s: SmallAccessSize = left >= 4 && owner(at, 4) ? 4 : left >= 2 && owner(at, 2) ? 2 : 1;
      out.push([at, s]);
      at += s;
    }
    return out;
  };
  return {
    read(o, s) {
      const one = owner(o, s);
      if (one) return one[0].read(one[1], s);
      let v = 0;
      for (const [at, n] of runs(o, s)) v += this.read(at, n) * 2 ** (8 * (at - o));
      return v;
    },
    write(o, s, v) {
      const one = owner(o, s);
      if (one) return one[0].write(one[1], s, v);
      for (const [at, n] of runs(o, s)) {
        const part = (v >>> (8 * (at - o))) & (n === 4 ? 0xffff_ffff : (1 << (8 * n)) - 1);
        this.write(at, n, part >>> 0);
      }
    },
    read64(o) {
      const one = owner(o, 8);
      if (one?.[0].read64) return one[0].read64(one[1]);
      const lo = this.read(o, 4) >>> 0;
      const hi = this.read(o + 4, 4) >>> 0;
      return (BigInt(hi) << 32n) | BigInt(lo);
    },
    write64(o, v) {
      const one = owner(o, 8);
      if (one?.[0].write64) return one[0].write64(one[1], v);
      this.write(o, 4, Number(v & 0xffff_ffffn));
      this.write(o + 4, 4, Number((v >> 32n) & 0xffff_ffffn));
    },
  };
}
