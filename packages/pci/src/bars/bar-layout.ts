import { ConfigurationError, type PciBarDescriptor } from "@vmm/core";
import { Reg, ROM_ENABLE } from "../config/header.js";

export const ROM_INDEX = 6;
const TWO_32 = 2 ** 32;

/** Limits on BAR sizes: powers of two within these bounds. */
const LIMITS = {
  io: { min: 4, max: 0x1_0000 },
  mem32: { min: 16, max: 2 ** 31 },
  mem64: { min: 16, max: 2 ** 51 },
  rom: { min: 2048, max: 2 ** 31 },
} as const;

export function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** The config offset of BAR register `index` (0-5), or of the ROM BAR for index 6. */
export function barOffset(index: number): number {
  return index === ROM_INDEX ? Reg.ROM_BAR : Reg.BAR0 + 4 * index;
}

/** Initial value (the type bits) and writable mask of one BAR dword. */
export interface BarRegisterLayout {
  readonly offset: number;
  readonly initial: number;
  readonly writable: number;
}

/**
 * Checks a function's BAR descriptors (indices, overlaps of 64-bit pairs, power-of-two sizes) and throws a
 * ConfigurationError naming the function when one is wrong.
 */
export function validateBars(owner: string, bars: readonly PciBarDescriptor[], rom?: { size: number }): void {
  const used = new Set<number>();
  for (const bar of bars) {
    const where = `${owner}: BAR${bar.index}`;
    if (!Number.isInteger(bar.index) || bar.index < 0 || bar.index > 5) {
      throw new ConfigurationError(`${where}: BAR index must be 0 to 5`);
    }
    const slots = bar.kind === "mem64" ? [bar.index, bar.index + 1] : [bar.index];
    if (bar.kind === "mem64" && bar.index === 5) throw new ConfigurationError(`${where}: a 64-bit BAR needs two registers`);
    for (const s of slots) {
      if (used.has(s)) throw new ConfigurationError(`${where}: register ${s} is already used by another BAR`);
      used.add(s);
    }
    const limit = LIMITS[bar.kind];
    if (!LIMITS[bar.kind]) throw new ConfigurationError(`${where}: unknown BAR kind ${String(bar.kind)}`);
    if (!isPowerOfTwo(bar.size) || bar.size < limit.min || bar.size > limit.max) {
      throw new ConfigurationError(
        `${where}: size ${bar.size} must be a power of two between ${limit.min} and ${limit.max} bytes`,
      );
    }
    if (bar.kind === "io" && bar.prefetchable) throw new ConfigurationError(`${where}: an I/O BAR cannot be prefetchable`);
  }
  if (rom && (!isPowerOfTwo(rom.size) || rom.size < LIMITS.rom.min || rom.size > LIMITS.rom.max)) {
    throw new ConfigurationError(
      `${owner}: expansion ROM size ${rom.size} must be a power of two between 2 KiB and 2 GiB`,
    );
  }
}

/** The BAR dwords a descriptor occupies: type bits are read-only, address bits below the size read 0. */
export function barRegisters(bar: PciBarDescriptor): BarRegisterLayout[] {
  const offset = barOffset(bar.index);
  const prefetch = bar.prefetchable ? 1 << 3 : 0;
  switch (bar.kind) {
    case "io":
      return [{ offset, initial: 0x1, writable: (~(bar.size - 1) & 0xffff_fffc) >>> 0 }];
    case "mem32":
      return [{ offset, initial: prefetch, writable: (~(bar.size - 1) & 0xffff_fff0) >>> 0 }];
    case "mem64": {
      const low = bar.size >= TWO_32 ? 0 : (~(bar.size - 1) & 0xffff_fff0) >>> 0;
      const high = bar.size > TWO_32 ? (~(bar.size / TWO_32 - 1) & 0xffff_ffff) >>> 0 : 0xffff_ffff;
      return [
        { offset, initial: 0x4 | prefetch, writable: low },
        { offset: offset + 4, initial: 0, writable: high },
      ];
    }
  }
}

export function romRegister(size: number): BarRegisterLayout {
  return { offset: Reg.ROM_BAR, initial: 0, writable: ((~(size - 1) & 0xffff_f800) | ROM_ENABLE) >>> 0 };
}
