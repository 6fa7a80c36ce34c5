import type { SmallAccessSize } from "@vmm/core";

/** Where a config mechanism sends decoded transactions (the bus). */
export interface ConfigTarget {
  /** A decoded read; the target validates the width and that it stays inside one dword. */
  read(bus: number, device: number, fn: number, offset: number, size: number, via: ConfigMechanism): number;
  write(bus: number, device: number, fn: number, offset: number, size: number, value: number, via: ConfigMechanism): void;
  /** A transaction the mechanism itself refuses (bad width, enable bit clear); reads return all-ones. */
  dropped(reason: string, via: ConfigMechanism): void;
}

export type ConfigMechanism = "cf8" | "ecam" | "direct";

export function onesFor(size: number): number {
  return size === 1 ? 0xff : size === 2 ? 0xffff : 0xffff_ffff;
}

export function isSmallSize(size: number): size is SmallAccessSize {
  return size === 1 || size === 2 || size === 4;
}

/**
 * A value as an unsigned number of the access width. Values may arrive as int32 (what `|`, `&` and `<<` make of
 * bit 31) or with bits above the width; config and BAR paths hand devices and guests this form only.
 */
export function toWidth(value: number, size: number): number {
  return size === 1 ? value & 0xff : size === 2 ? value & 0xffff : value >>> 0;
}
