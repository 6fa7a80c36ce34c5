/** Widths of a register or of one access to it, in bytes. */
export type RegisterWidth = 1 | 2 | 4;

const MASKS = [0, 0xff, 0xffff, 0, 0xffff_ffff] as const;

/** All ones of `width` bytes (0xff, 0xffff, 0xffff_ffff): the value of an absent device, and the mask of a width. */
export const widthMask = (width: RegisterWidth): number => MASKS[width];

/**
 * `value` cut to `width` bytes, as an unsigned number. `& 0xffff_ffff` alone yields a negative number when bit 31
 * is set; every value a register table returns or hands to a register has been through this.
 */
export const toUnsigned = (value: number, width: RegisterWidth): number => (value & MASKS[width]) >>> 0;

/** Bytes `byteOffset..byteOffset+width-1` of a 32-bit `value` (byte 0 the least significant), unsigned. */
export const extractBytes = (value: number, byteOffset: number, width: RegisterWidth): number =>
  byteOffset >= 4 ? 0 : toUnsigned(value >>> (8 * byteOffset), width);

/** Reads `width` little-endian bytes of `bytes` at `offset`, unsigned; bytes past the end read as 0. */
export function readLE(bytes: Uint8Array, offset: number, width: RegisterWidth): number {
  let v = 0;
  for (let i = width - 1; i >= 0; i--) v = (v << 8) | (bytes[offset + i] ?? 0);
  return v >>> 0;
}

/** Writes the low `width` bytes of `value` little-endian into `bytes` at `offset`; bytes past the end are dropped. */
export function writeLE(bytes: Uint8Array, offset: number, width: RegisterWidth, value: number): void {
  for (let i = 0; i < width && offset + i < bytes.length; i++) bytes[offset + i] = (value >>> (8 * i)) & 0xff;
}

/** The smallest power of two that is at least `n` (1 for n <= 1): BAR and window sizes. */
export function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
