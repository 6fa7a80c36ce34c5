// The passthrough PCI function: one device model over any VfioBackend (kernel VFIO, a vfio-user server).
//
// Config space is the framework's register file backed by the device (pci's ConfigSpace.backWith): the VMM keeps
// what describes the guest's machine and the device reads live what describes the device.
//
//   the VMM's (emulated)                              the device's (read live, written through)
//   IDs, class, revision, subsystem, header type      status (but the capability-list bit), cache line size,
//   command (kept, and every write forwarded so the   latency timer, BIST, CardBus CIS, Min_Gnt/Max_Lat
//     device decodes and masters as the guest says)    vendor registers between and after capabilities
//   BARs, ROM BAR, interrupt line and pin             bodies of capabilities the VMM does not model (PM, VPD,
//   capability IDs and next pointers                    vendor-specific, AER, ... in extended space)
//   MSI, MSI-X (the VMM's capabilities, at the        PCI Express Device Capabilities/Control/Status (and 2),
//     device's offsets)                                  but Initiate FLR
//   PCI Express type, link, slot and root registers
//   hidden capabilities (read 0)
//
// BARs are sized from the regions; mmappable page-aligned areas become memslots at the BAR's guest address
// (BarMappings), the rest traps to the backend. MSI/MSI-X and INTx go from the device's eventfds to KVM
// (VfioInterrupts). Guest RAM is mapped for DMA at attach, after the host's reserved ranges are checked.
import {
  allOnes,
  StderrLogger,
  Tokens,
  type AppliedQuirk,
  type DeviceContext,
  type DeviceQuirk,
  type GuestMemory,
  type Handle,
  type IoHandler,
  type Logger,
  type MemoryMapper,
  type PciAttachContext,
  type PciBarWindow,
  type PciCapability,
  type QuirkDeviceAccess,
  type QuirkMsixTable,
  type SmallAccessSize,
} from "@vmm/core";
import { EventFd, mapFd as hostMapFd } from "@vmm/host-io";
import {
  Command,
  PciFunction,
  Reg,
  type BarOverlay,
  type ExpressDeviceType,
} from "@vmm/pci";
import { VfioBackendLostError, VfioIrq, VfioRegion, type VfioBackend } from "../backend/backend.js";
import { BarMappings, type BarSpan, type MapFd } from "./bar-mappings.js";
import { decode, decode64, encode, encode64, hex } from "./bytes.js";
import {
  CapabilityId,
  capabilityLength,
  HIDDEN_CAPABILITIES,
  HIDDEN_EXTENDED_CAPABILITIES,
  msiFromDevice,
  msixFromDevice,
  msixLayout,
} from "./capability-policy.js";
import { applyQuirks } from "../quirks/apply.js";
import { ConfigOverlays } from "./config-overlays.js";
import { inspectDevice, LEGACY_CONFIG_SIZE, walkExtendedCapabilities, type DeviceIdentity, type DeviceLayout, type FoundCapability, type RomSource } from "./device-config.js";
import { mapGuestMemory, unmapGuestMemory, type DmaMapping } from "./dma.js";
import { PassthroughExpressCapability } from "./express.js";
import { VfioInterrupts, type IntxUnmask, type VfioInterruptMode, type VfioPciStats } from "./interrupts.js";

export interface VfioPciOptions {
  /** Instance name, used in errors and traces. */
  readonly name: string;
  readonly backend: VfioBackend;
  /** Where mmappable BAR areas become guest memory (the machine's Tokens.MemoryMapper: KVM memslots). */
  readonly memoryMapper: MemoryMapper;
  /** Guest RAM, mapped for the device's DMA at attach (Tokens.GuestMemory; memfd-backed regions carry `file`). */
  readonly guestMemory: GuestMemory;
  readonly logger?: Logger;
  /**
   * How INTx is unmasked after the guest's EOI: "eventfd" hands the resample eventfd to the backend as its unmask
   * eventfd (kernel VFIO: no userspace hop), "message" watches it and sends an UNMASK (vfio-user, and the
   * fallback when a backend refuses the eventfd). Default "message".
   */
  readonly intxUnmask?: IntxUnmask;
  /** The expansion ROM: the device's (default), none, or an image that replaces it. */
  readonly rom?: RomSource;
  /** Map mmappable BAR areas into the guest (default true); false traps every access (debugging). */
  readonly mmap?: boolean;
  /** Host mapping of region fds (default host-io's mapFd). */
  readonly mapFd?: MapFd;
  /** Eventfds for pending vectors and INTx (default host-io's EventFd). */
  readonly createEventFd?: () => EventFd;
}

/** Header registers that pass through to the device (everything else below 0x40 is the VMM's); per-byte masks. */
const PHYSICAL_HEADER: ReadonlyArray<{ readonly name: string; readonly offset: number; readonly size: 1 | 2 | 4; readonly bits: number }> = [
  // Bit 4 (capabilities list) follows the VMM's chain; error bits and interrupt status are the device's.
  { name: "status", offset: Reg.STATUS, size: 2, bits: 0xffef },
  { name: "cache line size", offset: Reg.CACHE_LINE_SIZE, size: 1, bits: 0xff },
  { name: "latency timer", offset: Reg.LATENCY_TIMER, size: 1, bits: 0xff },
  { name: "BIST", offset: Reg.BIST, size: 1, bits: 0xff },
  { name: "CardBus CIS pointer", offset: Reg.CARDBUS_CIS, size: 4, bits: 0xffff_ffff },
  { name: "Min_Gnt, Max_Lat", offset: Reg.MIN_GNT, size: 2, bits: 0xffff },
];

const ROM_INDEX = 6;

/**
 * A PCI function passed through from a VfioBackend. Build it before attaching it to the bus; the bus's placement
 * (PCI Express endpoint, RC integrated endpoint, conventional) decides what its PCI Express capability says.
 * Call `close()` when the VM stops: it resets the device and releases everything.
 */
export class VfioPciFunction extends PciFunction {
  readonly backend: VfioBackend;
  readonly stats: VfioPciStats = { userspaceInterrupts: 0, intxUnmasks: 0, trappedReads: 0, trappedWrites: 0, backendErrors: 0 };
  private readonly layout: DeviceLayout;
  private readonly logger: Logger;
  private readonly guestMemory: GuestMemory;
  private readonly mappings: BarMappings;
  private readonly irqs: VfioInterrupts;
  /** Where the MSI capability sits in config space: writes there resync the device's MSI vectors. */
  private readonly msiSpan: { readonly offset: number; readonly size: number } | undefined;
  private deviceExpress: PassthroughExpressCapability | undefined;
  private expressOffset: number | undefined;
  private extendedPlaced = false;
  private dma: DmaMapping[] = [];
  private closed = false;
  private readonly warned = new Set<string>();
  private readonly configOverlays: ConfigOverlays;
  private readonly applied: AppliedQuirk[] = [];

  constructor(options: VfioPciOptions) {
    const layout = inspectDevice(options.name, options.backend, options.rom);
    const id = layout.identity;
    super({
      name: options.name,
      vendorId: id.vendorId,
      deviceId: id.deviceId,
      classCode: id.classCode,
      revision: id.revision,
      subsystemVendorId: id.subsystemVendorId,
      subsystemId: id.subsystemId,
      interruptPin: id.interruptPin,
      bars: layout.bars.map((b) => b.descriptor),
      ...(layout.rom ? { rom: layout.rom } : {}),
    });
    this.layout = layout;
    this.configOverlays = new ConfigOverlays(options.name, layout.configSize);
    this.backend = options.backend;
    this.logger = options.logger ?? new StderrLogger();
    this.guestMemory = options.guestMemory;
    for (const p of layout.problems) this.logger.warn(`${this.name}: ${p}`);
    this.mappings = new BarMappings(this.name, layout.bars, options.memoryMapper, options.mapFd ?? ((fd, o, l, m) => hostMapFd(fd, o, l, m)), this.logger, options.mmap ?? true);

    this.config.backWith({
      read: (offset, size) => this.physicalRead(offset, size),
      write: (offset, size, value) => this.physicalWrite(offset, size, value),
    });
    this.config.setForwarded(Reg.COMMAND, 2);
    for (const r of PHYSICAL_HEADER) {
      for (let i = 0; i < r.size; i++) this.config.setPhysical(r.offset + i, 1, (r.bits >>> (8 * i)) & 0xff);
    }
    // Vendor registers between and after capabilities are the device's; each capability then claims its bytes.
    this.config.setPhysical(0x40, LEGACY_CONFIG_SIZE - 0x40);
    this.msiSpan = this.placeCapabilities();

    const createEventFd = options.createEventFd ?? (() => new EventFd());
    this.irqs = new VfioInterrupts({
      name: this.name,
      backend: this.backend,
      logger: this.logger,
      stats: this.stats,
      intx: this.intx,
      hasIntx: id.interruptPin !== 0,
      msi: this.msi,
      msix: this.msix,
      intxUnmask: options.intxUnmask ?? "message",
      createEventFd,
      suspendMappings: () => this.mappings.suspend(),
      resumeMappings: () => this.mappings.resume(),
    });
    this.msix?.subscribe(() => this.irqs.sync());
  }

  /** The device's own IDs, class and revision, as its config space reported them when the model was built. */
  get identity(): DeviceIdentity {
    return this.layout.identity;
  }

  /**
   * Applies the quirks among `quirks` that match this device (vendor/device, and the subsystem IDs and revision
   * where a quirk names them), in order: each lays its windows over BARs or config space. A quirk that throws or
   * returns a bad window refuses the device with a PluginError naming its plugin and this device.
   */
  applyQuirks(quirks: readonly DeviceQuirk[]): void {
    this.applied.push(...applyQuirks(this, quirks));
  }

  /** The quirks applied to this device, for `vmm devices`. */
  quirks(): readonly AppliedQuirk[] {
    return this.applied;
  }

  /**
   * The real device underneath the model: BAR `index` (BAR-relative) or config space, every access going to the
   * backend (quirks reach the device through this). Outside the region, or when the backend fails, reads are
   * all-ones and writes dropped.
   */
  deviceAccess(target: number | "config"): QuirkDeviceAccess {
    const limit = target === "config" ? this.layout.configSize : (this.layout.bars.find((b) => b.descriptor.index === target)?.region.size ?? 0);
    const region = target === "config" ? VfioRegion.CONFIG : target;
    const what = target === "config" ? "config" : `BAR${target}`;
    const inside = (o: number, n: number) => Number.isInteger(o) && o >= 0 && o + n <= limit;
    return {
      read: (o, n) => (inside(o, n) ? this.backendCall(`${what} read`, () => decode(this.backend.read(region, o, n), n), allOnes(n)) : allOnes(n)),
      write: (o, n, v) => {
        if (inside(o, n)) this.backendCall(`${what} write`, () => this.backend.write(region, o, encode(v, n)), undefined);
      },
    };
  }

  /** The emulated MSI-X table as a guest reaches it (table-relative), or undefined without MSI-X. */
  get msixTable(): QuirkMsixTable | undefined {
    const msix = this.msix;
    if (!msix) return undefined;
    const inside = (o: number, n: number) => Number.isInteger(o) && o >= 0 && o + n <= msix.tableSize;
    return {
      vectors: msix.vectors,
      read: (o, n) => (inside(o, n) ? msix.tableHandler.read(o, n) : allOnes(n)),
      write: (o, n, v) => {
        if (inside(o, n)) msix.tableHandler.write(o, n, v);
      },
    };
  }

  /**
   * Lays a window over config space (a quirk's): accesses inside it reach `overlay.handler` with window-relative
   * offsets, ahead of the model's own config space. Windows may not overlap. `remove()` takes it away.
   */
  overlayConfig(overlay: BarOverlay): Handle {
    return this.configOverlays.add(overlay);
  }

  /** The interrupt index the device signals now. */
  get interruptMode(): VfioInterruptMode {
    return this.irqs.current;
  }

  /** BAR-relative spans of BAR `index` mapped as memslots while it is decoded (the rest traps). */
  mappedSpans(index: number): BarSpan[] {
    return this.mappings.mappedSpans(index);
  }

  /**
   * Places the function as PCI Express (the bus does it at attach, from `PciAttachContext.express`): the device's
   * capability gets the placement's type and link registers, and the device's extended capabilities appear. A
   * device without a PCI Express capability (or with one the model had to hide) is conventional PCI hardware and
   * stays so, wherever it is placed.
   */
  override placeExpress(type: ExpressDeviceType): void {
    const cap = this.deviceExpress;
    if (!cap) {
      this.logger.warn(`${this.name}: ${this.backend.name} has no usable PCI Express capability: it stays a conventional PCI function`);
      return;
    }
    super.placeExpress(cap.place(type === "rc-integrated" ? "rc-integrated" : "endpoint"));
    this.placeExtendedCapabilities();
  }

  override overlayBar(index: number, overlay: BarOverlay): Handle {
    const handle = super.overlayBar(index, overlay);
    const trapped = this.mappings.exclude(index, overlay.offset, overlay.size);
    return {
      remove: () => {
        handle.remove();
        trapped.remove();
      },
    };
  }

  override configRead(offset: number, size: SmallAccessSize): number {
    if (this.configOverlays.empty) return super.configRead(offset, size);
    return this.configOverlays.read(offset, size, { read: (o, n) => super.configRead(o, n), write: () => {} });
  }

  override configWrite(offset: number, size: SmallAccessSize, value: number): void {
    if (!this.configOverlays.empty) {
      this.configOverlays.write(offset, size, value, { read: () => 0, write: (o, n, v) => this.modelConfigWrite(o, n, v) });
      return;
    }
    this.modelConfigWrite(offset, size, value);
  }

  /** A config write the model itself serves (no quirk window covers it). */
  private modelConfigWrite(offset: number, size: SmallAccessSize, value: number): void {
    const disabledBefore = this.intxDisabled;
    super.configWrite(offset, size, value);
    if (this.intxDisabled !== disabledBefore) this.irqs.intxDisableChanged(this.intxDisabled);
    if (this.deviceExpress?.flrRequested) {
      this.deviceExpress.flrRequested = false;
      this.logger.debug(`${this.name}: the guest initiated a function level reset`);
      this.reset();
    }
  }

  override barActivated(window: PciBarWindow): void {
    if (window.index !== ROM_INDEX) this.mappings.activate(window);
  }

  override barDeactivated(window: PciBarWindow): void {
    if (window.index !== ROM_INDEX) this.mappings.deactivate(window.index);
  }

  /**
   * Function reset (machine reset, or the guest's FLR): the device's interrupts off, the framework's state reset
   * (command, MSI/MSI-X), the device reset through the backend, then INTx set up again.
   */
  override reset(): void {
    this.irqs.hold();
    super.reset();
    this.resetDevice();
    if (!this.closed) this.irqs.release();
  }

  /**
   * The VM stops: the device's interrupts off, memslots removed (before any host mapping goes), the device reset,
   * DMA unmapped and the backend closed. Calling it twice is harmless.
   */
  /** The stats as named counters (`vmm run --stats`). */
  counters(): Readonly<Record<string, number>> {
    return { ...this.stats };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.irqs.close();
    this.mappings.close();
    this.resetDevice();
    unmapGuestMemory(this.backend, this.dma);
    this.dma = [];
    try {
      this.backend.close();
    } catch (e) {
      this.logger.warn(`${this.name}: closing ${this.backend.name} failed: ${(e as Error).message}`);
    }
  }

  protected override attached(context: PciAttachContext): void {
    if (!context.express) this.hideExpressCapability();
    this.dma = mapGuestMemory(this.name, this.backend, this.guestMemory);
    this.resetDevice(); // the VM starts with the device as the host left it otherwise
    this.irqs.release();
  }

  protected override configWritten(offset: number, size: SmallAccessSize, _value: number): void {
    const span = this.msiSpan;
    if (span && offset < span.offset + span.size && span.offset < offset + size) this.irqs.sync();
  }

  protected override busMasterChanged(_enabled: boolean): void {
    this.irqs.sync();
  }

  protected override deviceBarHandler(index: number): IoHandler | undefined {
    const bar = this.layout.bars.find((b) => b.descriptor.index === index);
    if (!bar) return undefined;
    const size = bar.region.size;
    const inside = (o: number, n: number) => o >= 0 && o + n <= size;
    return {
      read: (o, s) => {
        this.irqs.barAccessed();
        this.stats.trappedReads++;
        if (!inside(o, s)) return allOnes(s);
        return this.backendCall(`BAR${index} read`, () => decode(this.backend.read(index, o, s), s), allOnes(s));
      },
      write: (o, s, v) => {
        this.irqs.barAccessed();
        this.stats.trappedWrites++;
        if (inside(o, s)) this.backendCall(`BAR${index} write`, () => this.backend.write(index, o, encode(v, s)), undefined);
      },
      read64: (o) => {
        this.irqs.barAccessed();
        this.stats.trappedReads++;
        if (!inside(o, 8)) return 0xffff_ffff_ffff_ffffn;
        return this.backendCall(`BAR${index} read`, () => decode64(this.backend.read(index, o, 8)), 0xffff_ffff_ffff_ffffn);
      },
      write64: (o, v) => {
        this.irqs.barAccessed();
        this.stats.trappedWrites++;
        if (inside(o, 8)) this.backendCall(`BAR${index} write`, () => this.backend.write(index, o, encode64(v)), undefined);
      },
    };
  }

  private get intxDisabled(): boolean {
    return (this.config.read(Reg.COMMAND, 2) & Command.INTX_DISABLE) !== 0;
  }

  /**
   * The device's standard capabilities, each at its own offset: MSI and MSI-X replaced by the VMM's, the PCI
   * Express capability by its passthrough view, the rest passed through; those the VMM cannot show hidden.
   * Returns where MSI sits.
   */
  private placeCapabilities(): { offset: number; size: number } | undefined {
    const { config } = this.layout;
    let msiSpan: { offset: number; size: number } | undefined;
    for (const found of this.layout.capabilities) {
      const { id, offset, room } = found;
      if (id === CapabilityId.MSIX) {
        // Whatever the VMM shows, the device's own table and PBA pages are never mapped into the guest.
        const l = msixLayout(config, offset);
        this.mappings.exclude(l.tableBar, l.tableOffset, l.vectors * 16);
        this.mappings.exclude(l.pbaBar, l.pbaOffset, Math.ceil(l.vectors / 64) * 8);
      }
      const why = HIDDEN_CAPABILITIES.get(id);
      if (why) {
        this.hide(found, why, "debug"); // policy, not a fault of the device
        continue;
      }
      let owned: PciCapability | string | undefined;
      if (id === CapabilityId.MSI) owned = msiFromDevice(config, offset, room, this.irqCount(VfioIrq.MSI));
      else if (id === CapabilityId.MSIX) owned = msixFromDevice(msixLayout(config, offset), offset, room, this.irqCount(VfioIrq.MSIX));
      else if (id === CapabilityId.EXPRESS) owned = PassthroughExpressCapability.fromDevice(config, offset, room);
      if (typeof owned === "string") {
        this.hide(found, owned);
        continue;
      }
      if (!owned) {
        // Passed through: the chain owns the ID and next pointer, the device the rest.
        this.addCapability({ id, body: new Uint8Array(room - 2) }, offset);
        this.config.setPhysical(offset, 2, 0);
        continue;
      }
      try {
        this.addCapability(owned, offset);
      } catch (e) {
        this.hide(found, (e as Error).message);
        continue;
      }
      const length = owned instanceof PassthroughExpressCapability ? owned.size : capabilityLength(owned.body.length);
      this.config.setPhysical(offset, length, 0);
      if (owned instanceof PassthroughExpressCapability) {
        this.deviceExpress = owned;
        this.expressOffset = offset;
        owned.physicalBits().forEach((bits, i) => bits && this.config.setPhysical(offset + i, 1, bits));
      }
      if (id === CapabilityId.MSI) msiSpan = { offset, size: length };
    }
    return msiSpan;
  }

  /**
   * Keeps a capability's bytes out of the guest's reach: its place taken by a null capability (ID 0, so the
   * framework never mistakes it for an MSI or PCI Express one) that is unlinked from the chain, reading 0.
   */
  private hide(found: FoundCapability, why: string, level: "warn" | "debug" = "warn"): void {
    this.logger[level](`${this.name}: capability 0x${found.id.toString(16)} at ${hex(found.offset)} hidden: ${why}`);
    this.addCapability({ id: 0, body: new Uint8Array(found.room - 2) }, found.offset);
    this.hideCapability(found.offset);
    this.config.setPhysical(found.offset, found.room, 0);
  }

  /** On a conventional bus the PCI Express capability is hidden (see express.ts). */
  private hideExpressCapability(): void {
    const cap = this.deviceExpress;
    const offset = this.expressOffset;
    if (!cap || offset === undefined) return;
    this.hideCapability(offset);
    cap.clear();
    this.config.setPhysical(offset, cap.size, 0);
    this.deviceExpress = undefined;
  }

  /** The device's extended capabilities at their offsets, bodies passed through or hidden (PCI Express placement). */
  private placeExtendedCapabilities(): void {
    if (this.extendedPlaced) return;
    this.extendedPlaced = true;
    const problems: string[] = [];
    const found = walkExtendedCapabilities((o) => this.physicalRead(o, 4), this.layout.configSize, problems);
    for (const p of problems) this.logger.warn(`${this.name}: ${p}`);
    for (const c of found) {
      const length = Math.max(4, c.room & ~3);
      this.addExtendedCapability({ id: c.id, version: c.version ?? 0, body: new Uint8Array(length - 4) }, c.offset);
      const why = HIDDEN_EXTENDED_CAPABILITIES.get(c.id);
      if (why) {
        this.logger.debug(`${this.name}: extended capability 0x${c.id.toString(16)} at ${hex(c.offset)} hidden: ${why}`);
        this.hideExtendedCapability(c.offset);
      } else if (length > 4) {
        this.config.setPhysical(c.offset + 4, length - 4);
      }
    }
  }

  private irqCount(index: number): number {
    try {
      return this.backend.deviceInfo().numIrqs > index ? this.backend.irqInfo(index).count : 0;
    } catch {
      return 0;
    }
  }

  private resetDevice(): void {
    try {
      if (!this.backend.reset()) this.logOnce("no reset", "debug", `${this.backend.name} cannot be reset (no VFIO_DEVICE_FLAGS_RESET)`);
    } catch (e) {
      this.stats.backendErrors++;
      // A lost backend is reported once, by whoever stops the VM; a reset of it has nothing to add.
      if (!(e instanceof VfioBackendLostError)) this.logOnce("reset", "warn", `resetting ${this.backend.name} failed: ${(e as Error).message}`);
    }
  }

  private physicalRead(offset: number, size: SmallAccessSize): number {
    if (offset + size > this.layout.configSize) return 0;
    return this.backendCall("config read", () => decode(this.backend.read(VfioRegion.CONFIG, offset, size), size), allOnes(size));
  }

  private physicalWrite(offset: number, size: SmallAccessSize, value: number): void {
    if (offset + size > this.layout.configSize) return;
    this.backendCall("config write", () => this.backend.write(VfioRegion.CONFIG, offset, encode(value, size)), undefined);
  }

  /**
   * A backend access from a guest exit: a failure reads `fallback` (all-ones: no device answers) and is logged
   * once; a lost backend is not logged here (its loss stops the VM with its own line).
   */
  private backendCall<T>(what: string, fn: () => T, fallback: T): T {
    try {
      return fn();
    } catch (e) {
      this.stats.backendErrors++;
      if (!(e instanceof VfioBackendLostError)) this.logOnce(what, "warn", `${what} from ${this.backend.name} failed: ${(e as Error).message}`);
      return fallback;
    }
  }

  private logOnce(key: string, level: "warn" | "debug", message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.logger[level](`${this.name}: ${message}`);
  }
}

/**
 * Builds a VfioPciFunction from a device factory's context: the machine's MemoryMapper, GuestMemory and Logger
 * come from the VM's container (core Tokens), the name from the context.
 */
export function createVfioPciFunction(
  context: DeviceContext,
  backend: VfioBackend,
  options: Omit<VfioPciOptions, "name" | "backend" | "memoryMapper" | "guestMemory" | "logger"> = {},
): VfioPciFunction {
  const c = context.container;
  return new VfioPciFunction({
    ...options,
    name: context.name,
    backend,
    memoryMapper: c.resolve(Tokens.MemoryMapper),
    guestMemory: c.resolve(Tokens.GuestMemory),
    logger: c.resolve(Tokens.Logger),
  });
}
