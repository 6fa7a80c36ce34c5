import { readLE, type SmallAccessSize, writeLE } from "@vmm/core";

/**
 * Little-endian byte storage with per-bit masks. A write changes only writable bits; a 1 written to a
 * write-1-to-clear bit clears it; every other bit is read-only.
 */
export class MaskedBytes {
  readonly bytes: Uint8Array;
  readonly writable: Uint8Array;
  readonly writeOneToClear: Uint8Array;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.writable = new Uint8Array(size);
    this.writeOneToClear = new Uint8Array(size);
  }

  get size(): number {
    return this.bytes.length;
  }

  read(offset: number, size: SmallAccessSize): number {
    return readLe(this.bytes, offset, size);
  }

  /** A guest write: masks apply. */
  write(offset: number, size: SmallAccessSize, value: number): void {
    maskedWrite(this.bytes, this.writable, this.writeOneToClear, offset, size, value);
  }

  /** Sets initial or live values, ignoring masks (for the device model, never for the guest). */
  set(offset: number, size: SmallAccessSize, value: number): void {
    writeLe(this.bytes, offset, size, value);
  }

  /** Sets the writable and write-1-to-clear masks of a register. */
  mask(offset: number, size: SmallAccessSize, writable: number, writeOneToClear = 0): void {
    writeLe(this.writable, offset, size, writable);
    writeLe(this.writeOneToClear, offset, size, writeOneToClear);
  }
}

/** Little-endian register bytes: core's helpers, under the names this package uses. */
export const readLe = readLE;
export const writeLe = writeLE;

/** Applies a guest write of `size` bytes with writable and write-1-to-clear masks (either may be absent). */
export function maskedWrite(
  bytes: Uint8Array,
  writable: Uint8Array | undefined,
  w1c: Uint8Array | undefined,
  offset: number,
  size: number,
  value: number,
): void {
  for (let i = 0; i < size; i++) {
    const at = offset + i;
    if (at >= bytes.length) return;
    const v = (value >>> (8 * i)) & 0xff;
    const w = writable?.[at] ?? 0;
    const c = w1c?.[at] ?? 0;
    bytes[at] = ((bytes[at]! & ~w) | (v & w)) & ~(v & c) & 0xff;
  }
}
