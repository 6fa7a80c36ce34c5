// What the passthrough model learns from the device before it exists: identity and interrupt pin from the legacy
// 256 bytes of config space, BARs from the region infos (kind and prefetchability from the device's own BAR
// registers), the standard capability chain, and the expansion ROM. Everything here is untrusted input (a
// vfio-user server may send anything): the walks are bounded and a bad layout becomes a problem line, never a throw
// past `inspectDevice`'s own ConfigurationErrors.
import { ConfigurationError, nextPowerOfTwo, readLE, type PciBarDescriptor } from "@vmm/core";
import { VfioDeviceFlags, VfioIrq, VfioRegion, VfioRegionFlags, type VfioBackend, type VfioRegionInfo } from "../backend/backend.js";
import { hex } from "./bytes.js";

export const LEGACY_CONFIG_SIZE = 0x100;
export const EXTENDED_CONFIG_SIZE = 0x1000;
const FIRST_CAPABILITY = 0x40;
const FIRST_EXTENDED = 0x100;
/** The most capabilities a space can hold (4 bytes each): a longer walk is a loop. */
const MAX_STANDARD = (LEGACY_CONFIG_SIZE - FIRST_CAPABILITY) / 4;
const MAX_EXTENDED = (EXTENDED_CONFIG_SIZE - FIRST_EXTENDED) / 4;
/** The largest expansion ROM the model exposes (the ROM BAR decodes up to 16 MiB in practice). */
const MAX_ROM = 16 << 20;

export interface DeviceIdentity {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly classCode: number;
  readonly revision: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  /** 0 when the device has no INTx the backend can signal. */
  readonly interruptPin: 0 | 1 | 2 | 3 | 4;
}

/** A BAR as the model exposes it, with the region behind it. */
export interface DeviceBar {
  readonly descriptor: PciBarDescriptor;
  readonly region: VfioRegionInfo;
}

/** A capability in the device's chain: where it sits and how many bytes there are before the next one (or the end). */
export interface FoundCapability {
  readonly id: number;
  readonly offset: number;
  readonly room: number;
  /** Extended capabilities: the version nibble of the header. */
  readonly version?: number;
}

export interface DeviceLayout {
  readonly identity: DeviceIdentity;
  readonly bars: readonly DeviceBar[];
  /** The legacy 256 bytes as read at construction (the capability walk and capability bodies come from here). */
  readonly config: Uint8Array;
  /** Size of the CONFIG region: 256 (conventional) or 4096 (PCI Express). */
  readonly configSize: number;
  readonly capabilities: readonly FoundCapability[];
  readonly rom: Uint8Array | undefined;
  /** What the walk or the BAR scan had to ignore, one line each (logged as warnings). */
  readonly problems: readonly string[];
}

/** Which expansion ROM to expose: the device's (default), none, or an image given by the user. */
export type RomSource = "device" | "none" | Uint8Array;

/** Reads everything the model needs from the device; throws ConfigurationError for a device it cannot model. */
export function inspectDevice(name: string, backend: VfioBackend, romSource: RomSource = "device"): DeviceLayout {
  const problems: string[] = [];
  const info = backend.deviceInfo();
  if ((info.flags & VfioDeviceFlags.PCI) === 0) throw new ConfigurationError(`${name}: ${backend.name} is not a PCI device (VFIO device flags 0x${info.flags.toString(16)})`);
  if (info.numRegions <= VfioRegion.CONFIG) throw new ConfigurationError(`${name}: ${backend.name} has no config space region`);
  const configInfo = backend.regionInfo(VfioRegion.CONFIG);
  if (configInfo.size < LEGACY_CONFIG_SIZE) {
    throw new ConfigurationError(`${name}: ${backend.name}'s config space is ${configInfo.size} bytes, less than the 256 every PCI function has`);
  }
  const config = backend.read(VfioRegion.CONFIG, 0, LEGACY_CONFIG_SIZE);
  if (config.length !== LEGACY_CONFIG_SIZE) throw new ConfigurationError(`${name}: ${backend.name} returned ${config.length} bytes of config space, not 256`);
  const headerType = config[0x0e]! & 0x7f;
  if (headerType !== 0) {
    throw new ConfigurationError(`${name}: ${backend.name} has header type ${headerType} (a bridge); only type 0 functions can be passed through`);
  }
  const vendorId = readLE(config, 0x00, 2);
  if (vendorId === 0xffff || vendorId === 0) throw new ConfigurationError(`${name}: ${backend.name} reads vendor ID 0x${vendorId.toString(16)} (no device answers)`);

  const intxCount = info.numIrqs > VfioIrq.INTX ? backend.irqInfo(VfioIrq.INTX).count : 0;
  const pin = config[0x3d]!;
  if (pin > 4) problems.push(`interrupt pin ${pin} is not INTA#-INTD#: INTx hidden`);
  const identity: DeviceIdentity = {
    vendorId,
    deviceId: readLE(config, 0x02, 2),
    revision: config[0x08]!,
    classCode: readLE(config, 0x09, 4) & 0xff_ffff,
    subsystemVendorId: readLE(config, 0x2c, 2),
    subsystemId: readLE(config, 0x2e, 2),
    interruptPin: intxCount > 0 && pin >= 1 && pin <= 4 ? (pin as 1 | 2 | 3 | 4) : 0,
  };

  return {
    identity,
    bars: scanBars(backend, config, info.numRegions, problems),
    config,
    configSize: configInfo.size >= EXTENDED_CONFIG_SIZE ? EXTENDED_CONFIG_SIZE : LEGACY_CONFIG_SIZE,
    capabilities: walkCapabilities(config, problems),
    rom: readRom(name, backend, info.numRegions, romSource, problems),
    problems,
  };
}

/**
 * BARs 0-5 from their regions. The region size is the BAR size (rounded up to a power of two, and to the
 * minimum of 4 bytes for I/O and 16 for memory, should a device report less); the BAR register says I/O or memory,
 * 32 or 64 bits (at any index: the next BAR is then its upper half) and prefetchable.
 */
function scanBars(backend: VfioBackend, config: Uint8Array, numRegions: number, problems: string[]): DeviceBar[] {
  const bars: DeviceBar[] = [];
  for (let index: number = VfioRegion.BAR0; index <= VfioRegion.BAR5 && index < numRegions; index++) {
    const register = readLE(config, 0x10 + 4 * index, 4);
    const region = backend.regionInfo(index);
    const io = (register & 1) === 1;
    const mem64 = !io && ((register >>> 1) & 3) === 2;
    if (region.size > 0) {
      if (mem64 && index === VfioRegion.BAR5) {
        problems.push(`BAR5 claims 64 bits with no BAR6 for its upper half: BAR5 hidden`);
        continue;
      }
      if ((region.flags & (VfioRegionFlags.READ | VfioRegionFlags.WRITE)) === 0 && !region.mmap) {
        problems.push(`BAR${index} can be neither read, written nor mapped: hidden`);
      } else {
        const size = Math.max(io ? 4 : 16, nextPowerOfTwo(region.size));
        if (!Number.isSafeInteger(size) || size > 2 ** 48 || (io && size > 0x1_0000)) {
          problems.push(`BAR${index} of 0x${region.size.toString(16)} bytes cannot be placed: hidden`);
        } else {
          if (size !== region.size) problems.push(`BAR${index} region of 0x${region.size.toString(16)} bytes exposed as a 0x${size.toString(16)}-byte BAR`);
          bars.push({
            descriptor: { index, kind: io ? "io" : mem64 ? "mem64" : "mem32", size, ...(!io && (register & 8) !== 0 ? { prefetchable: true } : {}) },
            region,
          });
        }
      }
    }
    if (mem64) index++; // the upper half is not a BAR of its own
  }
  return bars;
}

/**
 * The standard capability chain of the legacy 256 bytes, in chain order. A pointer into the header, past the end
 * or back to a capability already seen ends the walk with a problem line (the capabilities before it stay).
 * Each capability's room runs to the next capability by offset (or to 0x100): the model owns no byte of it
 * beyond what the capability itself defines.
 */
export function walkCapabilities(config: Uint8Array, problems: string[]): FoundCapability[] {
  if ((config[0x06]! & 0x10) === 0) return [];
  const offsets: Array<{ id: number; offset: number }> = [];
  const seen = new Set<number>();
  for (let at = config[0x34]! & 0xfc; at !== 0; at = config[at + 1]! & 0xfc) {
    if (at < FIRST_CAPABILITY) {
      problems.push(`capability pointer 0x${at.toString(16)} points into the header: chain cut there`);
      break;
    }
    if (seen.has(at) || seen.size >= MAX_STANDARD) {
      problems.push(`capability chain loops back to 0x${at.toString(16)}: chain cut there`);
      break;
    }
    seen.add(at);
    offsets.push({ id: config[at]!, offset: at });
  }
  return withRoom(offsets, LEGACY_CONFIG_SIZE);
}

/**
 * The extended capability list from 0x100, read through `read32` (PCI Express placement only). An all-zero or
 * all-ones header at 0x100 means none. Loops and pointers below 0x100 end the walk with a problem line.
 */
export function walkExtendedCapabilities(read32: (offset: number) => number, size: number, problems: string[]): FoundCapability[] {
  if (size < EXTENDED_CONFIG_SIZE) return [];
  const found: Array<{ id: number; offset: number; version: number }> = [];
  const seen = new Set<number>();
  for (let at = FIRST_EXTENDED; at !== 0; ) {
    if (at < FIRST_EXTENDED || at > EXTENDED_CONFIG_SIZE - 4) {
      problems.push(`extended capability pointer 0x${at.toString(16)} is outside 0x100-0xFFC: list cut there`);
      break;
    }
    if (seen.has(at) || seen.size >= MAX_EXTENDED) {
      problems.push(`extended capability list loops back to 0x${at.toString(16)}: list cut there`);
      break;
    }
    seen.add(at);
    const header = read32(at) >>> 0;
    if (at === FIRST_EXTENDED && (header === 0 || header === 0xffff_ffff)) break;
    found.push({ id: header & 0xffff, version: (header >>> 16) & 0xf, offset: at });
    at = (header >>> 20) & 0xffc;
  }
  return withRoom(found, EXTENDED_CONFIG_SIZE);
}

function withRoom<T extends { offset: number }>(list: readonly T[], end: number): Array<T & { room: number }> {
  const sorted = list.map((c) => c.offset).sort((a, b) => a - b);
  return list.map((c) => {
    const next = sorted.find((o) => o > c.offset) ?? end;
    return { ...c, room: next - c.offset };
  });
}

function readRom(name: string, backend: VfioBackend, numRegions: number, source: RomSource, problems: string[]): Uint8Array | undefined {
  if (source === "none") return undefined;
  if (source instanceof Uint8Array) {
    if (source.length === 0 || source.length > MAX_ROM) throw new ConfigurationError(`${name}: a ROM image must hold 1 byte to 16 MiB, not ${source.length}`);
    return source;
  }
  if (numRegions <= VfioRegion.ROM) return undefined;
  const info = backend.regionInfo(VfioRegion.ROM);
  if (info.size === 0) return undefined;
  if ((info.flags & VfioRegionFlags.READ) === 0) {
    problems.push(`the expansion ROM region cannot be read: no ROM`);
    return undefined;
  }
  if (info.size > MAX_ROM) {
    problems.push(`the expansion ROM region is ${hex(info.size)} bytes, more than 16 MiB: no ROM`);
    return undefined;
  }
  try {
    const bytes = backend.read(VfioRegion.ROM, 0, info.size);
    // Copy: the backend may reuse its buffer; the ROM BAR serves these bytes for the VM's lifetime.
    const rom = new Uint8Array(bytes);
    if (rom.length >= 2 && (rom[0] !== 0x55 || rom[1] !== 0xaa)) problems.push(`the expansion ROM has no 55 AA signature (drivers will ignore it)`);
    return rom;
  } catch (e) {
    problems.push(`the expansion ROM cannot be read (${(e as Error).message}): no ROM`);
    return undefined;
  }
}
