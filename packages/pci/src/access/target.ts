import { toUnsigned, widthMask, type SmallAccessSize } from "@vmm/core";

/** Where a config mechanism sends decoded transactions (the bus). */
export interface ConfigTarget {
  /** A decoded read; the target validates the width and that it stays inside one dword. */
  read(bus: number, device: number, fn: number, offset: number, size: number, via: ConfigMechanism): number;
  write(bus: number, device: number, fn: number, offset: number, size: number, value: number, via: ConfigMechanism): void;
  /** A transaction the mechanism itself refuses (bad width, enable bit clear); reads return all-ones. */
  dropped(reason: string, via: ConfigMechanism): void;
}

export type ConfigMechanism = "cf8" | "ecam" | "direct";

/** All ones of an access width: what a read of nothing returns (core's widthMask; 4 bytes for any other size). */
export function onesFor(size: number): number {
  return isSmallSize(size) ? widthMask(size) : widthMask(4);
}

export function isSmallSize(size: number): size is SmallAccessSize {
  return size === 1 || size === 2 || size === 4;
}

/**
 * `value` cut to an access width, unsigned (core's toUnsigned; 4 bytes for any other size). Values may arrive as
 * int32 (what `|`, `&` and `<<` make of bit 31) or with bits above the width; config and BAR paths hand devices
 * and guests this form only.
 */
export function toWidth(value: number, size: number): number {
  return toUnsigned(value, isSmallSize(size) ? size : 4);
}
