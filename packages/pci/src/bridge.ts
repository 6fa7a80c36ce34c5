import { ConfigurationError, type PciDevice } from "@vmm/core";
import type { ExpressPortOptions } from "./capabilities/express.js";
import { isPowerOfTwo } from "./bars/bar-layout.js";
import { Command, Reg } from "./config/header.js";
import { PciFunction } from "./function.js";

/** Type 1 (PCI-to-PCI bridge) header offsets beyond the common part (0x00-0x0F, 0x34, 0x3C/0x3D). */
export const BridgeReg = {
  PRIMARY_BUS: 0x18,
  SECONDARY_BUS: 0x19,
  SUBORDINATE_BUS: 0x1a,
  SECONDARY_LATENCY: 0x1b,
  IO_BASE: 0x1c,
  IO_LIMIT: 0x1d,
  SECONDARY_STATUS: 0x1e,
  MEMORY_BASE: 0x20,
  MEMORY_LIMIT: 0x22,
  PREF_BASE: 0x24,
  PREF_LIMIT: 0x26,
  PREF_BASE_UPPER: 0x28,
  PREF_LIMIT_UPPER: 0x2c,
  IO_BASE_UPPER: 0x30,
  IO_LIMIT_UPPER: 0x32,
  ROM_BAR: 0x38,
  BRIDGE_CONTROL: 0x3e,
} as const;

export const BridgeControl = {
  PARITY_ERROR_RESPONSE: 1 << 0,
  SERR: 1 << 1,
  /** ISA enable: the I/O window does not forward the top 768 bytes of each 1 KiB block (ISA aliases). */
  ISA: 1 << 2,
  /** VGA enable: the legacy VGA ranges (memory 0xA0000-0xBFFFF, I/O 0x3B0-0x3BB and 0x3C0-0x3DF) are forwarded. */
  VGA: 1 << 3,
  VGA_16BIT: 1 << 4,
  MASTER_ABORT: 1 << 5,
  /** Secondary bus reset: every function below the bridge is reset while it is set. */
  SECONDARY_BUS_RESET: 1 << 6,
} as const;

export const PCI_BRIDGE_CLASS = 0x060400;
/** Header type 1: PCI-to-PCI bridge. */
export const HEADER_TYPE_BRIDGE = 0x01;

/** An inclusive address range [base, limit]. */
export interface ForwardRange {
  readonly base: number;
  readonly limit: number;
}

/** What a bridge's config space says it forwards downstream, read through configRead (any PciDevice). */
export interface BridgeState {
  readonly primary: number;
  readonly secondary: number;
  readonly subordinate: number;
  /** Command bit 0: I/O forwarding. */
  readonly ioEnabled: boolean;
  /** Command bit 1: memory forwarding. */
  readonly memEnabled: boolean;
  /** Undefined when base > limit (closed). */
  readonly io: ForwardRange | undefined;
  readonly mem: ForwardRange | undefined;
  readonly pref: ForwardRange | undefined;
  readonly control: number;
}

/** True when the function has a type 1 (bridge) header. */
export function isBridge(device: PciDevice): boolean {
  return (device.configRead(Reg.HEADER_TYPE, 1) & 0x7f) === HEADER_TYPE_BRIDGE;
}

const range = (base: number, limit: number): ForwardRange | undefined => (base <= limit ? { base, limit } : undefined);

/** Decodes a bridge's bus numbers, command gating, windows and bridge control from its config space. */
export function readBridgeState(device: PciDevice): BridgeState {
  const r = (offset: number, size: 1 | 2 | 4) => device.configRead(offset, size) >>> 0;
  const command = r(Reg.COMMAND, 2);
  const ioBase = r(BridgeReg.IO_BASE, 1);
  const ioLimit = r(BridgeReg.IO_LIMIT, 1);
  const io32 = (ioBase & 0xf) === 1;
  const ioHigh = (o: number) => (io32 ? r(o, 2) * 0x1_0000 : 0);
  const prefBase = r(BridgeReg.PREF_BASE, 2);
  const prefLimit = r(BridgeReg.PREF_LIMIT, 2);
  const pref64 = (prefBase & 0xf) === 1;
  const high = (o: number) => (pref64 ? r(o, 4) * 2 ** 32 : 0);
  return {
    primary: r(BridgeReg.PRIMARY_BUS, 1),
    secondary: r(BridgeReg.SECONDARY_BUS, 1),
    subordinate: r(BridgeReg.SUBORDINATE_BUS, 1),
    ioEnabled: (command & Command.IO) !== 0,
    memEnabled: (command & Command.MEMORY) !== 0,
    io: range(ioHigh(BridgeReg.IO_BASE_UPPER) + (ioBase & 0xf0) * 0x100, ioHigh(BridgeReg.IO_LIMIT_UPPER) + (ioLimit & 0xf0) * 0x100 + 0xfff),
    mem: range((r(BridgeReg.MEMORY_BASE, 2) & 0xfff0) * 0x1_0000, (r(BridgeReg.MEMORY_LIMIT, 2) & 0xfff0) * 0x1_0000 + 0xf_ffff),
    pref: range(high(BridgeReg.PREF_BASE_UPPER) + (prefBase & 0xfff0) * 0x1_0000, high(BridgeReg.PREF_LIMIT_UPPER) + (prefLimit & 0xfff0) * 0x1_0000 + 0xf_ffff),
    control: r(BridgeReg.BRIDGE_CONTROL, 2),
  };
}

const VGA_MEM: ForwardRange = { base: 0xa_0000, limit: 0xb_ffff };
const VGA_IO: readonly ForwardRange[] = [
  { base: 0x3b0, limit: 0x3bb },
  { base: 0x3c0, limit: 0x3df },
];
const inside = (r: ForwardRange | undefined, address: number, size: number) =>
  r !== undefined && address >= r.base && address + size - 1 <= r.limit;

/**
 * Whether a bridge forwards every byte of [address, address + size) downstream: the command register's I/O or
 * memory bit, then the I/O window (with ISA enable, only the first 256 bytes of each 1 KiB block), the memory or
 * prefetchable window, or (VGA enable) the legacy VGA ranges.
 */
export function bridgeForwards(state: BridgeState, space: "io" | "mem", address: number, size: number): boolean {
  const vga = (state.control & BridgeControl.VGA) !== 0;
  if (space === "io") {
    if (!state.ioEnabled) return false;
    if (vga && VGA_IO.some((r) => inside(r, address, size))) return true;
    if (!inside(state.io, address, size)) return false;
    if ((state.control & BridgeControl.ISA) === 0) return true;
    return (address & 0x300) === 0 && ((address + size - 1) & 0x300) === 0 && size <= 0x100;
  }
  if (!state.memEnabled) return false;
  return inside(state.mem, address, size) || inside(state.pref, address, size) || (vga && inside(VGA_MEM, address, size));
}

/** How much of its parent's windows the bus sets aside for a bridge at attach (bytes; 0 leaves a window closed). */
export interface BridgeReserve {
  /** I/O window (4 KiB granules). Default 4 KiB. */
  readonly io?: number;
  /** Non-prefetchable memory window, below 4 GiB (1 MiB granules). Default 8 MiB. */
  readonly mem?: number;
  /** 64-bit prefetchable memory window (1 MiB granules). Default 256 MiB. */
  readonly pref?: number;
}

export const DEFAULT_BRIDGE_RESERVE: Required<BridgeReserve> = { io: 0x1000, mem: 8 << 20, pref: 256 << 20 };

export interface PciBridgeOptions {
  name: string;
  /** Default 0x1b36 (Red Hat, QEMU's PCI IDs). */
  vendorId?: number;
  /** Default 0x0001 (QEMU's pci-bridge). */
  deviceId?: number;
  revision?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  interruptPin?: 0 | 1 | 2 | 3 | 4;
  /** A PCI Express port: its capability type and port/slot numbers. */
  express?: { type: "root-port" } & ExpressPortOptions;
  /** What the bus reserves for the windows at attach. */
  reserve?: BridgeReserve;
}

/** Type 1 header registers: bus numbers, windows and bridge control, with their writable masks. */
const BRIDGE_REGISTERS = [
  { name: "primary bus", offset: BridgeReg.PRIMARY_BUS, size: 1, initial: 0, writable: 0xff },
  { name: "secondary bus", offset: BridgeReg.SECONDARY_BUS, size: 1, initial: 0, writable: 0xff },
  { name: "subordinate bus", offset: BridgeReg.SUBORDINATE_BUS, size: 1, initial: 0, writable: 0xff },
  { name: "secondary latency", offset: BridgeReg.SECONDARY_LATENCY, size: 1, initial: 0 },
  // 16-bit I/O decoding (type 0 in the low nibble); closed at reset (base above limit).
  { name: "I/O base", offset: BridgeReg.IO_BASE, size: 1, initial: 0xf0, writable: 0xf0 },
  { name: "I/O limit", offset: BridgeReg.IO_LIMIT, size: 1, initial: 0x00, writable: 0xf0 },
  { name: "secondary status", offset: BridgeReg.SECONDARY_STATUS, size: 2, initial: 0, writeOneToClear: 0xf900 },
  { name: "memory base", offset: BridgeReg.MEMORY_BASE, size: 2, initial: 0xfff0, writable: 0xfff0 },
  { name: "memory limit", offset: BridgeReg.MEMORY_LIMIT, size: 2, initial: 0x0000, writable: 0xfff0 },
  // 64-bit prefetchable decoding (type 1 in the low nibble).
  { name: "prefetchable base", offset: BridgeReg.PREF_BASE, size: 2, initial: 0xfff1, writable: 0xfff0 },
  { name: "prefetchable limit", offset: BridgeReg.PREF_LIMIT, size: 2, initial: 0x0001, writable: 0xfff0 },
  { name: "prefetchable base upper", offset: BridgeReg.PREF_BASE_UPPER, size: 4, initial: 0, writable: 0xffff_ffff },
  { name: "prefetchable limit upper", offset: BridgeReg.PREF_LIMIT_UPPER, size: 4, initial: 0, writable: 0xffff_ffff },
  { name: "I/O base upper", offset: BridgeReg.IO_BASE_UPPER, size: 2, initial: 0 },
  { name: "I/O limit upper", offset: BridgeReg.IO_LIMIT_UPPER, size: 2, initial: 0 },
  { name: "ROM BAR", offset: BridgeReg.ROM_BAR, size: 4, initial: 0 },
  { name: "bridge control", offset: BridgeReg.BRIDGE_CONTROL, size: 2, initial: 0, writable: 0x007f },
] as const;

/**
 * A PCI-to-PCI bridge: a type 1 header (bus numbers, I/O, memory and 64-bit prefetchable windows, bridge control)
 * as a masked register file. The bus reads it back after every write: it routes config cycles to the secondary
 * bus range, decodes the BARs behind the bridge only inside its windows, and resets the functions below on a
 * secondary bus reset. The bridge itself forwards nothing; it is pure config state.
 */
export class PciBridge extends PciFunction {
  readonly reserve: Required<BridgeReserve>;

  /** Snapshots: everything it keeps is in config space. */
  protected override saveDeviceState(): undefined {
    return undefined;
  }

  constructor(options: PciBridgeOptions) {
    super({
      name: options.name,
      vendorId: options.vendorId ?? 0x1b36,
      deviceId: options.deviceId ?? 0x0001,
      classCode: PCI_BRIDGE_CLASS,
      revision: options.revision ?? 0,
      interruptPin: options.interruptPin ?? 0,
      express: options.express,
    });
    this.defineRegister({ name: "header type", offset: Reg.HEADER_TYPE, size: 1, initial: HEADER_TYPE_BRIDGE });
    // 0x28-0x2F hold the prefetchable upper halves in a type 1 header, not the subsystem IDs.
    for (const r of BRIDGE_REGISTERS) this.defineRegister(r);
    const reserve = { ...DEFAULT_BRIDGE_RESERVE, ...options.reserve };
    for (const [what, size, granule] of [
      ["io", reserve.io, 0x1000],
      ["mem", reserve.mem, 1 << 20],
      ["pref", reserve.pref, 1 << 20],
    ] as const) {
      if (size !== 0 && (!isPowerOfTwo(size) || size < granule)) {
        throw new ConfigurationError(`${options.name}: ${what} reserve ${size} must be 0 or a power of two of at least 0x${granule.toString(16)} bytes`);
      }
    }
    if (reserve.io > 0x1_0000) throw new ConfigurationError(`${options.name}: io reserve ${reserve.io} is more than 64 KiB`);
    this.reserve = reserve;
  }

  /** Function reset: also the bus numbers, windows and bridge control go back to their reset values. */
  override reset(): void {
    super.reset();
    for (const r of BRIDGE_REGISTERS) this.config.file.set(r.offset, r.size, r.initial);
  }
}

export interface PcieRootPortOptions {
  name: string;
  /** Link Capabilities port number (default 0). */
  port?: number;
  /** Physical slot number in Slot Capabilities (default 0). */
  slot?: number;
  reserve?: BridgeReserve;
}

/** QEMU's pcie-root-port IDs (Red Hat 1b36:000c): guests know it as a generic PCI Express root port. */
export const ROOT_PORT_VENDOR_ID = 0x1b36;
export const ROOT_PORT_DEVICE_ID = 0x000c;

/**
 * A PCI Express root port: a bridge with a PCI Express capability of type root port whose link is trained
 * (x1, 2.5 GT/s, Data Link Layer Link Active) and whose slot is populated (Presence Detect State), no hot-plug.
 * The bus lets only device 0 answer on its secondary bus, as on a PCI Express link.
 */
export class PcieRootPort extends PciBridge {
  constructor(options: PcieRootPortOptions) {
    super({
      name: options.name,
      vendorId: ROOT_PORT_VENDOR_ID,
      deviceId: ROOT_PORT_DEVICE_ID,
      express: { type: "root-port", port: options.port, slot: options.slot },
      reserve: options.reserve,
    });
  }
}
