import { AddressConflictError, ConfigurationError } from "./errors.js";
import { widthMask } from "./registers/bits.js";

/** Widths an access can have. 8 only occurs on MMIO. */
export type AccessSize = 1 | 2 | 4 | 8;
export type SmallAccessSize = 1 | 2 | 4;

/**
 * Handles accesses to one registered range; offsets are relative to the range's base.
 * Values of 1/2/4-byte accesses are unsigned numbers. An 8-byte access goes to read64/write64 when the handler
 * has them, otherwise it is split into two 4-byte accesses (low half first).
 */
export interface IoHandler {
  read(offset: number, size: SmallAccessSize): number;
  write(offset: number, size: SmallAccessSize, value: number): void;
  read64?(offset: number): bigint;
  write64?(offset: number, value: bigint): void;
}

export interface IoRange {
  readonly base: number;
  readonly size: number;
  readonly owner: string;
  readonly handler: IoHandler;
}

export interface Registration {
  readonly range: IoRange;
  /** Removes the range; calling it twice is harmless. */
  unregister(): void;
}

export interface UnhandledAccess {
  space: string;
  address: number;
  size: AccessSize;
  write: boolean;
  value?: number | bigint;
}

/** Reads of unhandled addresses return all-ones of the access width, like an absent device on a real bus. */
export function allOnes(size: SmallAccessSize): number {
  return widthMask(size);
}

/**
 * A flat address space (port I/O or MMIO) of non-overlapping ranges. Lookup is a binary search over ranges
 * sorted by base, with a one-entry cache for the hot case of repeated accesses to one device.
 */
export class AddressSpace {
  private ranges: IoRange[] = [];
  private last: IoRange | undefined;
  /** Accesses that hit no range. */
  unhandled = 0;
  /** Called for every unhandled access when set (the --debug trace). */
  trace: ((access: UnhandledAccess) => void) | undefined;

  constructor(
    readonly name: string,
    readonly limit: number,
  ) {}

  register(base: number, size: number, owner: string, handler: IoHandler): Registration {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(size) || base < 0 || size <= 0 || base + size > this.limit) {
      throw new ConfigurationError(
        `${this.name}: ${owner} asked for an invalid range [0x${base.toString(16)}, +0x${size.toString(16)})`,
      );
    }
    const at = this.insertionPoint(base);
    const before = this.ranges[at - 1];
    const after = this.ranges[at];
    const clash = before && before.base + before.size > base ? before : after && after.base < base + size ? after : undefined;
    if (clash) throw new AddressConflictError(this.name, owner, clash.owner, base, size);
    const range: IoRange = { base, size, owner, handler };
    this.ranges.splice(at, 0, range);
    return { range, unregister: () => this.remove(range) };
  }

  /** The range containing `address`, if any. */
  find(address: number): IoRange | undefined {
    const last = this.last;
    if (last && address >= last.base && address < last.base + last.size) return last;
    const ranges = this.ranges;
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const r = ranges[mid]!;
      if (address < r.base) hi = mid - 1;
      else if (address >= r.base + r.size) lo = mid + 1;
      else return (this.last = r);
    }
    return undefined;
  }

  /** All ranges, sorted by base. */
  list(): readonly IoRange[] {
    return this.ranges;
  }

  read(address: number, size: SmallAccessSize): number {
    const r = this.find(address);
    if (!r) {
      this.miss(address, size, false);
      return widthMask(size);
    }
    return r.handler.read(address - r.base, size);
  }

  write(address: number, size: SmallAccessSize, value: number): void {
    const r = this.find(address);
    if (!r) return this.miss(address, size, true, value);
    r.handler.write(address - r.base, size, value);
  }

  read64(address: number): bigint {
    const r = this.find(address);
    if (!r) {
      this.miss(address, 8, false);
      return 0xffff_ffff_ffff_ffffn;
    }
    const off = address - r.base;
    if (r.handler.read64) return r.handler.read64(off);
    const lo = r.handler.read(off, 4);
    const hi = r.handler.read(off + 4, 4);
    return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
  }

  write64(address: number, value: bigint): void {
    const r = this.find(address);
    if (!r) return this.miss(address, 8, true, value);
    const off = address - r.base;
    if (r.handler.write64) return r.handler.write64(off, value);
    r.handler.write(off, 4, Number(value & 0xffff_ffffn));
    r.handler.write(off + 4, 4, Number((value >> 32n) & 0xffff_ffffn));
  }

  private miss(address: number, size: AccessSize, write: boolean, value?: number | bigint): void {
    this.unhandled++;
    this.trace?.({ space: this.name, address, size, write, value });
  }

  private remove(range: IoRange): void {
    const i = this.ranges.indexOf(range);
    if (i < 0) return;
    this.ranges.splice(i, 1);
    if (this.last === range) this.last = undefined;
  }

  private insertionPoint(base: number): number {
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ranges[mid]!.base < base) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Port I/O: 16-bit addresses. */
export function createPortIoSpace(): AddressSpace {
  return new AddressSpace("pio", 0x1_0000);
}

/** MMIO: guest-physical addresses, exact up to 2^52 (the widest x86 physical address). */
export function createMmioSpace(): AddressSpace {
  return new AddressSpace("mmio", 2 ** 52);
}
