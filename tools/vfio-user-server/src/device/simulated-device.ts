import type { IrqCounts, IrqState } from "../irq/irq-state.js";
import { Errno, PAGE_SIZE, PciIrq, PciRegion } from "../protocol/constants.js";
import { invalid, ProtocolError } from "../protocol/errors.js";
import {
  advancedErrorReporting,
  type CapabilitySpec,
  deviceSerialNumber,
  type ExtendedCapabilitySpec,
  msi,
  msix,
  MSIX_CONTROL_FUNCTION_MASK,
  PCIE_DEVCAP_FLR,
  PCIE_DEVICE_CONTROL,
  PCIE_INITIATE_FLR,
  pciExpress,
  powerManagement,
  virtualChannel,
  vitalProductData,
} from "../pci/capabilities.js";
import { type ConfigSpace, writtenValue } from "../pci/config-space.js";
import { buildConfigSpace, COMMAND_INTX_DISABLE, Config, STATUS_INTERRUPT } from "../pci/layout.js";
import type { CapabilityDecl, DeviceInternals, DeviceSpec, DeviceWindow, ExtendedCapabilityDecl } from "./device-spec.js";
import { MsiFunction } from "./msi-function.js";
import { MsixTable } from "./msix-table.js";
import { type MmapArea, privateMemory, Region, type RegionWindow } from "./region.js";
import type { MemoryFactory } from "./shared-memory.js";
import { type EngineDma, TestEngine } from "./test-engine.js";
import { VpdFunction } from "./vpd-function.js";

/** What the device needs from the server: the client's interrupt set-up, client memory, and the process. */
export interface DeviceHost {
  readonly irq: IrqState;
  readonly dma: EngineDma;
  readonly memory: MemoryFactory;
  exit(status: number): void;
  log(message: string): void;
}

/** A region as DEVICE_GET_REGION_INFO describes it (before the session adapts it to what the client can take). */
export interface RegionDescription {
  readonly index: number;
  readonly size: number;
  readonly readable: boolean;
  readonly writable: boolean;
  /** Areas the client may mmap through `fd` (offsets inside the region; the fd's offset 0 is the region's). */
  readonly mmapAreas: readonly MmapArea[];
  readonly fd: number | undefined;
}

const EMPTY_REGION: Omit<RegionDescription, "index"> = { size: 0, readable: false, writable: false, mmapAreas: [], fd: undefined };

/**
 * A simulated PCI function built from a DeviceSpec: config space with its capabilities live (MSI masking, MSI-X
 * function mask, VPD transfers, FLR), BARs made of memory (a memfd where the client may mmap) with trapped windows
 * over it (test engine, MSI-X table and PBA, the device's own registers), and the ROM.
 */
export class SimulatedDevice implements DeviceInternals {
  readonly config: ConfigSpace;
  readonly engine: TestEngine;
  readonly msixTable: MsixTable | undefined;
  readonly irqCounts: IrqCounts;
  private readonly msiFunction: MsiFunction | undefined;
  private readonly vpd: VpdFunction | undefined;
  private readonly regions = new Map<number, Region>();
  private readonly windows: DeviceWindow[] = [];
  private readonly contents = new Map<number, (bytes: Uint8Array) => void>();
  /** The device's interrupt is pending on INTx (the engine's STATUS.IRQ). */
  private intxPending = false;

  constructor(
    readonly spec: DeviceSpec,
    private readonly host: DeviceHost,
  ) {
    this.config = buildConfigSpace({
      identity: spec.identity,
      express: spec.express,
      bars: spec.bars,
      romSize: spec.rom?.length ?? 0,
      capabilities: spec.capabilities.map(capabilitySpec),
      extendedCapabilities: spec.extendedCapabilities.map(extendedCapabilitySpec),
    });
    this.engine = new TestEngine(spec.engineId, spec.engine.offset, {
      dma: host.dma,
      raiseInterrupt: (vector) => this.raiseInterrupt(vector),
      setIntxLevel: (level) => this.setIntxLevel(level),
      exit: (status) => host.exit(status),
      log: (message) => host.log(message),
    });

    const msixDecl = findDecl(spec.capabilities, "msix");
    const msiDecl = findDecl(spec.capabilities, "msi");
    const vpdDecl = findDecl(spec.capabilities, "vpd");
    const pcieDecl = findDecl(spec.capabilities, "pcie");
    if (msixDecl) {
      const control = msixDecl.offset + 2;
      const table = new MsixTable(
        msixDecl.vectors,
        (vector) => void host.irq.signal(PciIrq.MSIX, vector),
        () => (this.config.u16(control) & MSIX_CONTROL_FUNCTION_MASK) !== 0,
        (lost) => host.log(`msi-x vector ${lost.vector} lost: entry ${lost.vector} holds address 0x${lost.address.toString(16)} data 0x${lost.data.toString(16)}, not the message the host programmed`),
      );
      this.msixTable = table;
      this.config.onWrite(control, 2, () => table.deliverPending());
      // The host kernel's part: a vector given an eventfd gets its entry programmed; one taken away is masked.
      host.irq.onTriggerChange((index, vector, assigned) => {
        if (index !== PciIrq.MSIX) return;
        if (assigned) table.hostProgram(vector);
        else table.hostRelease(vector);
      });
    }
    if (msiDecl) this.msiFunction = new MsiFunction(this.config, msiDecl.offset, msiDecl, (vector) => void host.irq.signal(PciIrq.MSI, vector));
    if (vpdDecl) this.vpd = new VpdFunction(this.config, vpdDecl.offset, vpdDecl.image);
    if (pcieDecl && pcieDecl.deviceCapabilities & PCIE_DEVCAP_FLR) {
      const at = pcieDecl.offset + PCIE_DEVICE_CONTROL;
      this.config.onWrite(at, 2, (offset, data) => {
        const { value, mask } = writtenValue(offset, data, at, 2);
        if (mask & PCIE_INITIATE_FLR && value & PCIE_INITIATE_FLR) this.reset();
      });
    }
    this.irqCounts = irqCountsOf(spec);
    // INTx Disable holds the line while set (the interrupt stays pending and goes out once it clears).
    this.config.onWrite(Config.COMMAND, 2, () => this.driveIntx());

    for (const bar of spec.bars) this.regions.set(bar.index, this.buildBar(bar, msixDecl));
    if (spec.rom) {
      const rom = privateMemory(spec.rom.length);
      rom.bytes.set(spec.rom);
      this.regions.set(PciRegion.ROM, new Region(PciRegion.ROM, spec.rom.length, rom, [], [], false));
    }
    this.reset();
  }

  describeRegion(index: number): RegionDescription {
    if (!Number.isInteger(index) || index < 0 || index >= PciRegion.COUNT) throw invalid(`region ${index} does not exist (this device has ${PciRegion.COUNT})`);
    if (index === PciRegion.CONFIG) return { index, size: this.config.size, readable: true, writable: true, mmapAreas: [], fd: undefined };
    const region = this.regions.get(index);
    if (!region) return { index, ...EMPTY_REGION };
    const fd = region.backing.fd;
    return { index, size: region.size, readable: true, writable: region.writable, mmapAreas: fd === undefined ? [] : region.mmapAreas, fd };
  }

  regionRead(index: number, offset: number, length: number): Uint8Array {
    if (index === PciRegion.CONFIG) {
      this.checkBounds(index, this.config.size, offset, length);
      return this.config.read(offset, length);
    }
    const region = this.region(index);
    this.checkBounds(index, region.size, offset, length);
    return region.read(offset, length);
  }

  regionWrite(index: number, offset: number, data: Uint8Array): void {
    if (index === PciRegion.CONFIG) {
      this.checkBounds(index, this.config.size, offset, data.length);
      return this.config.write(offset, data);
    }
    const region = this.region(index);
    this.checkBounds(index, region.size, offset, data.length);
    if (!region.writable) throw invalid(`region ${index} is read-only`);
    region.write(offset, data);
  }

  /** A function-level reset: config space, engine, MSI-X table, VPD, device registers and BAR contents. */
  reset(): void {
    this.engine.reset();
    this.config.reset();
    this.intxPending = false;
    this.driveIntx();
    this.msixTable?.reset();
    this.restoreHostMsix();
    this.vpd?.reset();
    for (const window of this.windows) window.reset?.();
    for (const [index, region] of this.regions) {
      if (index === PciRegion.ROM) continue;
      region.backing.bytes.fill(0, 0, region.size);
      this.contents.get(index)?.(region.backing.bytes.subarray(0, region.size));
    }
  }

  /** After a reset the host restores the entries of the vectors it has set up, as Linux restores MSI-X state. */
  private restoreHostMsix(): void {
    const table = this.msixTable;
    if (!table) return;
    for (let v = 0; v < table.vectors; v++) if (this.host.irq.hasTrigger(PciIrq.MSIX, v)) table.hostProgram(v);
  }

  close(): void {
    for (const region of this.regions.values()) region.backing.close();
  }

  /** The interrupt mode follows the client's set-up: MSI-X if it gave MSI-X eventfds, else MSI, else INTx. */
  private raiseInterrupt(vector: number): "msix" | "msi" | "intx" {
    if (this.host.irq.hasTriggers(PciIrq.MSIX)) {
      this.msixTable?.raise(vector);
      return "msix";
    }
    if (this.host.irq.hasTriggers(PciIrq.MSI)) {
      this.msiFunction?.raise(vector);
      return "msi";
    }
    return "intx";
  }

  /** The engine asserts or deasserts its interrupt; Interrupt Status shows it whatever INTx Disable says. */
  private setIntxLevel(level: boolean): void {
    this.intxPending = level;
    const status = this.config.u16(Config.STATUS);
    this.config.set(Config.STATUS, 2, level ? status | STATUS_INTERRUPT : status & ~STATUS_INTERRUPT);
    this.driveIntx();
  }

  private driveIntx(): void {
    const line = this.intxPending && !(this.config.u16(Config.COMMAND) & COMMAND_INTX_DISABLE);
    if (line !== this.host.irq.intxLevel) this.host.irq.setIntxLevel(line);
  }

  private region(index: number): Region {
    if (!Number.isInteger(index) || index < 0 || index >= PciRegion.COUNT) throw invalid(`region ${index} does not exist`);
    const region = this.regions.get(index);
    if (!region) throw invalid(`region ${index} is not implemented by this device (size 0)`);
    return region;
  }

  private checkBounds(index: number, size: number, offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > size) {
      throw new ProtocolError(Errno.EINVAL, `region ${index}: [0x${offset.toString(16)}, +${length}) outside its ${size} bytes`);
    }
  }

  private buildBar(bar: DeviceSpec["bars"][number], msixDecl: Extract<CapabilityDecl, { kind: "msix" }> | undefined): Region {
    const windows: RegionWindow[] = [];
    if (this.spec.engine.bar === bar.index) windows.push(this.engine);
    if (msixDecl && this.msixTable) {
      if (msixDecl.tableBar === bar.index) windows.push(this.msixTable.tableWindow(msixDecl.tableOffset));
      if (msixDecl.pbaBar === bar.index) windows.push(this.msixTable.pbaWindow(msixDecl.pbaOffset));
    }
    const own = bar.windows?.(this) ?? [];
    this.windows.push(...own);
    windows.push(...own);
    const areas = bar.mmap === "all" ? [{ offset: 0, size: bar.size }] : (bar.mmap ?? []);
    checkMmapAreas(bar.index, bar.size, areas, windows);
    const memory = areas.length > 0 ? this.host.memory(`${this.spec.name}-bar${bar.index}`, bar.size) : privateMemory(bar.size);
    if (bar.contents) this.contents.set(bar.index, bar.contents);
    return new Region(bar.index, bar.size, memory, windows, areas, true);
  }
}

/** The interrupts of each VFIO index a device has: INTx when it has a pin, its MSI and MSI-X vectors. */
export function irqCountsOf(spec: DeviceSpec): IrqCounts {
  return {
    intx: spec.identity.interruptPin ? 1 : 0,
    msi: findDecl(spec.capabilities, "msi")?.vectors ?? 0,
    msix: findDecl(spec.capabilities, "msix")?.vectors ?? 0,
  };
}

/**
 * The rule every device keeps: mmap areas are whole pages inside the BAR, and no page holding a trapped window
 * (the test engine, the MSI-X table or PBA, device registers) is offered, since the server must see those accesses.
 */
function checkMmapAreas(index: number, size: number, areas: readonly MmapArea[], windows: readonly RegionWindow[]): void {
  for (const area of areas) {
    if (area.offset % PAGE_SIZE !== 0 || area.size % PAGE_SIZE !== 0 || area.size === 0 || area.offset + area.size > size) {
      throw new RangeError(`BAR${index}: mmap area [0x${area.offset.toString(16)}, +0x${area.size.toString(16)}) is not whole pages inside the BAR`);
    }
    for (const w of windows) {
      const firstPage = Math.floor(w.offset / PAGE_SIZE) * PAGE_SIZE;
      const endPage = Math.ceil((w.offset + w.size) / PAGE_SIZE) * PAGE_SIZE;
      if (area.offset < endPage && firstPage < area.offset + area.size) {
        throw new RangeError(`BAR${index}: mmap area [0x${area.offset.toString(16)}, +0x${area.size.toString(16)}) covers the page of ${w.name}`);
      }
    }
  }
}

function findDecl<K extends CapabilityDecl["kind"]>(decls: readonly CapabilityDecl[], kind: K): Extract<CapabilityDecl, { kind: K }> | undefined {
  return decls.find((d): d is Extract<CapabilityDecl, { kind: K }> => d.kind === kind);
}

function capabilitySpec(decl: CapabilityDecl): CapabilitySpec {
  switch (decl.kind) {
    case "pm":
      return powerManagement(decl.offset, decl.pmc, { noSoftReset: decl.noSoftReset });
    case "msi":
      return msi(decl.offset, decl);
    case "msix":
      return msix(decl.offset, decl);
    case "pcie":
      return pciExpress(decl.offset, decl);
    case "vpd":
      return vitalProductData(decl.offset);
  }
}

function extendedCapabilitySpec(decl: ExtendedCapabilityDecl): ExtendedCapabilitySpec {
  switch (decl.kind) {
    case "aer":
      return advancedErrorReporting(decl.offset);
    case "vc":
      return virtualChannel(decl.offset);
    case "dsn":
      return deviceSerialNumber(decl.offset, decl.serial);
  }
}
