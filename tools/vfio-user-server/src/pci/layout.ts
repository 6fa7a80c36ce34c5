import type { CapabilitySpec, ExtendedCapabilitySpec } from "./capabilities.js";
import { ConfigSpace } from "./config-space.js";

export interface PciIdentity {
  readonly vendor: number;
  readonly device: number;
  readonly revision: number;
  /** Base class, subclass, programming interface: 0x020000 is an Ethernet controller. */
  readonly classCode: number;
  readonly subsystemVendor: number;
  readonly subsystem: number;
  /** 1 = INTA .. 4 = INTD, 0 = none. */
  readonly interruptPin: number;
}

export type BarKind = "io" | "mem32" | "mem64";

export interface BarSpec {
  readonly index: number;
  readonly kind: BarKind;
  /** A power of two: at least 4 for I/O, 16 for memory. */
  readonly size: number;
  readonly prefetchable?: boolean;
}

export interface ConfigLayout {
  readonly identity: PciIdentity;
  /** A PCI Express function: 4 KiB of config space, extended capabilities from 0x100. */
  readonly express: boolean;
  readonly bars: readonly BarSpec[];
  /** The expansion ROM's size, or 0 without one. */
  readonly romSize: number;
  readonly capabilities: readonly CapabilitySpec[];
  readonly extendedCapabilities: readonly ExtendedCapabilitySpec[];
}

export const Config = {
  VENDOR: 0x00,
  DEVICE: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION: 0x08,
  CLASS: 0x09,
  CACHE_LINE: 0x0c,
  LATENCY: 0x0d,
  HEADER_TYPE: 0x0e,
  BIST: 0x0f,
  BAR0: 0x10,
  CARDBUS_CIS: 0x28,
  SUBSYSTEM_VENDOR: 0x2c,
  SUBSYSTEM: 0x2e,
  ROM: 0x30,
  CAPABILITIES: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
  MIN_GNT: 0x3e,
  MAX_LAT: 0x3f,
} as const;

export const COMMAND_IO = 1 << 0;
export const COMMAND_MEMORY = 1 << 1;
export const COMMAND_BUS_MASTER = 1 << 2;
export const COMMAND_PARITY = 1 << 6;
export const COMMAND_SERR = 1 << 8;
export const COMMAND_INTX_DISABLE = 1 << 10;
export const STATUS_INTERRUPT = 1 << 3;
export const STATUS_CAPABILITIES = 1 << 4;
/** Master data parity error, signaled/received target abort, received master abort, signaled SERR, parity error. */
const STATUS_ERRORS_W1C = 0xf900;
const STATUS_DEVSEL_MEDIUM = 0x0200;

/** The BAR register's fixed low bits and writable mask for `bar`, and (64-bit) the upper half's. */
export function barRegisters(bar: BarSpec): { value: number; writable: number }[] {
  checkBar(bar);
  const address = ~(bar.size - 1) >>> 0;
  if (bar.kind === "io") return [{ value: 0x1, writable: address & 0xfffffffc }];
  const low = { value: (bar.kind === "mem64" ? 0x4 : 0) | (bar.prefetchable ? 0x8 : 0), writable: address & 0xfffffff0 };
  return bar.kind === "mem64" ? [low, { value: 0, writable: 0xffffffff }] : [low];
}

function checkBar(bar: BarSpec): void {
  const min = bar.kind === "io" ? 4 : 16;
  if (!Number.isInteger(bar.size) || bar.size < min || (bar.size & (bar.size - 1)) !== 0 || bar.size > 0x80000000) {
    throw new RangeError(`BAR${bar.index}: size ${bar.size} is not a power of two from ${min} to 2 GiB`);
  }
  const last = bar.kind === "mem64" ? bar.index + 1 : bar.index;
  if (!Number.isInteger(bar.index) || bar.index < 0 || last > 5) throw new RangeError(`BAR${bar.index}: no such BAR register`);
}

/** Builds the type-0 configuration header, BARs and chained capabilities of a function. */
export function buildConfigSpace(layout: ConfigLayout): ConfigSpace {
  const space = new ConfigSpace(layout.express ? 4096 : 256);
  const id = layout.identity;
  space.define(Config.VENDOR, 2, id.vendor);
  space.define(Config.DEVICE, 2, id.device);
  const hasIo = layout.bars.some((b) => b.kind === "io");
  const hasMemory = layout.bars.some((b) => b.kind !== "io") || layout.romSize > 0;
  const commandMask = (hasIo ? COMMAND_IO : 0) | (hasMemory ? COMMAND_MEMORY : 0) | COMMAND_BUS_MASTER | COMMAND_PARITY | COMMAND_SERR | COMMAND_INTX_DISABLE;
  space.define(Config.COMMAND, 2, 0, { writable: commandMask });
  const status = (layout.capabilities.length > 0 ? STATUS_CAPABILITIES : 0) | (layout.express ? 0 : STATUS_DEVSEL_MEDIUM);
  space.define(Config.STATUS, 2, status, { w1c: STATUS_ERRORS_W1C });
  space.define(Config.REVISION, 1, id.revision);
  space.define(Config.CLASS, 1, id.classCode & 0xff);
  space.define(Config.CLASS + 1, 2, (id.classCode >>> 8) & 0xffff);
  space.define(Config.CACHE_LINE, 1, 0, { writable: 0xff });
  // A PCI Express function hardwires the latency timer to 0.
  space.define(Config.LATENCY, 1, 0, { writable: layout.express ? 0 : 0xff });
  space.define(Config.SUBSYSTEM_VENDOR, 2, id.subsystemVendor);
  space.define(Config.SUBSYSTEM, 2, id.subsystem);
  space.define(Config.INTERRUPT_LINE, 1, 0, { writable: 0xff });
  space.define(Config.INTERRUPT_PIN, 1, id.interruptPin);

  const used = new Set<number>();
  for (const bar of layout.bars) {
    barRegisters(bar).forEach((register, half) => {
      const index = bar.index + half;
      if (used.has(index)) throw new RangeError(`BAR register ${index} is declared twice`);
      used.add(index);
      space.define(Config.BAR0 + 4 * index, 4, register.value, { writable: register.writable });
    });
  }
  if (layout.romSize > 0) {
    if ((layout.romSize & (layout.romSize - 1)) !== 0 || layout.romSize < 2048) throw new RangeError(`ROM size ${layout.romSize} is not a power of two of at least 2 KiB`);
    // Address bits above the size and the enable bit; bits 1-10 are reserved.
    space.define(Config.ROM, 4, 0, { writable: ((~(layout.romSize - 1) & 0xfffff800) | 1) >>> 0 });
  }

  chainCapabilities(space, layout.capabilities);
  if (layout.extendedCapabilities.length > 0 && !layout.express) throw new RangeError("extended capabilities need PCI Express config space");
  chainExtendedCapabilities(space, layout.extendedCapabilities);
  space.sealResetImage();
  return space;
}

function chainCapabilities(space: ConfigSpace, capabilities: readonly CapabilitySpec[]): void {
  const sorted = [...capabilities].sort((a, b) => a.offset - b.offset);
  checkPlacement(sorted, 0x40, 0x100, 2);
  space.define(Config.CAPABILITIES, 1, sorted[0]?.offset ?? 0);
  sorted.forEach((cap, i) => {
    space.define(cap.offset, 1, cap.id);
    space.define(cap.offset + 1, 1, sorted[i + 1]?.offset ?? 0);
    defineFields(space, cap);
  });
}

function chainExtendedCapabilities(space: ConfigSpace, capabilities: readonly ExtendedCapabilitySpec[]): void {
  const sorted = [...capabilities].sort((a, b) => a.offset - b.offset);
  checkPlacement(sorted, 0x100, space.size, 4);
  if (sorted.length > 0 && sorted[0]!.offset !== 0x100) throw new RangeError("the first extended capability must be at 0x100");
  sorted.forEach((cap, i) => {
    const next = sorted[i + 1]?.offset ?? 0;
    space.define(cap.offset, 4, (cap.id | (cap.version << 16) | (next << 20)) >>> 0);
    defineFields(space, cap);
  });
}

function checkPlacement(sorted: readonly CapabilitySpec[], start: number, end: number, header: number): void {
  let free = start;
  for (const cap of sorted) {
    if (cap.offset % 4 !== 0) throw new RangeError(`capability ${cap.name} at 0x${cap.offset.toString(16)} is not dword aligned`);
    if (cap.offset < free) throw new RangeError(`capability ${cap.name} at 0x${cap.offset.toString(16)} overlaps the one before it`);
    if (cap.offset + cap.length > end) throw new RangeError(`capability ${cap.name} at 0x${cap.offset.toString(16)} runs past 0x${end.toString(16)}`);
    for (const field of cap.fields) {
      if (field.at < header || field.at + field.width > cap.length) throw new RangeError(`capability ${cap.name}: field at +0x${field.at.toString(16)} outside its body`);
    }
    free = cap.offset + cap.length;
  }
}

function defineFields(space: ConfigSpace, cap: CapabilitySpec): void {
  for (const field of cap.fields) {
    space.define(cap.offset + field.at, field.width, field.value, { writable: field.writable, w1c: field.w1c });
  }
}
