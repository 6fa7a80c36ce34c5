// Little-endian helpers for the byte arrays the backend exchanges, and address formatting for messages.
import { readLE, type SmallAccessSize, writeLE } from "@vmm/core";

export const PAGE_SIZE = 4096;

/** `0x1f000`: addresses and sizes in messages. */
export const hex = (n: number): string => `0x${n.toString(16)}`;

/** An inclusive range as messages print it: `[0x40000000-0x7fffffff]`. */
export const range = (start: number, endInclusive: number): string => `[${hex(start)}-${hex(endInclusive)}]`;

/** `size` bytes of a backend read as an unsigned little-endian number. */
export function decode(bytes: Uint8Array, size: SmallAccessSize): number {
  return readLE(bytes, 0, size);
}

export function encode(value: number, size: SmallAccessSize): Uint8Array {
  const out = new Uint8Array(size);
  writeLE(out, 0, size, value);
  return out;
}

export function decode64(bytes: Uint8Array): bigint {
  return BigInt(readLE(bytes, 0, 4)) | (BigInt(readLE(bytes, 4, 4)) << 32n);
}

export function encode64(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  writeLE(out, 0, 4, Number(value & 0xffff_ffffn));
  writeLE(out, 4, 4, Number((value >> 32n) & 0xffff_ffffn));
  return out;
}
