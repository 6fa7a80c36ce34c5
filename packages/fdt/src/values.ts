import { FdtError } from "./format.js";

// Property value encodings (spec 2.2.4): big-endian 32-bit cells, 64-bit values as two cells, NUL-terminated
// strings and string lists. Decoders refuse values of the wrong shape instead of guessing.

const U32_MAX = 0xffff_ffff;
const U64_MAX = (1n << 64n) - 1n;
const utf8 = new TextEncoder();

/** One or more u32 cells. */
export function encodeCells(cells: readonly number[]): Uint8Array {
  const out = new Uint8Array(cells.length * 4);
  const view = new DataView(out.buffer);
  cells.forEach((c, i) => {
    if (!Number.isInteger(c) || c < 0 || c > U32_MAX) throw new FdtError(`cell value ${c} is not a u32`);
    view.setUint32(i * 4, c);
  });
  return out;
}

/** `value` as `count` big-endian cells (a 64-bit address in 2, a PCI address in 3). */
export function bigintToCells(value: bigint | number, count: number): number[] {
  const v = BigInt(value);
  if (v < 0n || v >> BigInt(32 * count) !== 0n) throw new FdtError(`0x${v.toString(16)} does not fit in ${count} cell(s)`);
  const cells: number[] = [];
  for (let i = count - 1; i >= 0; i--) cells.push(Number((v >> BigInt(32 * i)) & 0xffff_ffffn));
  return cells;
}

/** u64 values, each as two cells. */
export function encodeU64(values: readonly (bigint | number)[]): Uint8Array {
  for (const v of values) if (BigInt(v) < 0n || BigInt(v) > U64_MAX) throw new FdtError(`${v} is not a u64`);
  return encodeCells(values.flatMap((v) => bigintToCells(v, 2)));
}

/** A NUL-terminated string (printable, no embedded NUL). */
export function encodeString(value: string): Uint8Array {
  return encodeStringList([value]);
}

/** Strings one after the other, each NUL-terminated (`compatible = "a", "b"`). */
export function encodeStringList(values: readonly string[]): Uint8Array {
  if (values.length === 0) throw new FdtError("a string list needs at least one string");
  for (const v of values) if (v.includes("\0")) throw new FdtError(`string ${JSON.stringify(v)} contains a NUL`);
  return utf8.encode(values.map((v) => `${v}\0`).join(""));
}

/** The value's u32 cells; throws when its length is not a multiple of 4. */
export function decodeCells(value: Uint8Array): number[] {
  if (value.length % 4 !== 0) throw new FdtError(`a ${value.length}-byte value is not a list of 32-bit cells`);
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  return Array.from({ length: value.length / 4 }, (_, i) => view.getUint32(i * 4));
}

/** The value as exactly one u32. */
export function decodeU32(value: Uint8Array): number {
  const cells = decodeCells(value);
  if (cells.length !== 1) throw new FdtError(`expected one cell, found ${cells.length}`);
  return cells[0]!;
}

/** The value as exactly one u64 (two cells). */
export function decodeU64(value: Uint8Array): bigint {
  const cells = decodeCells(value);
  if (cells.length !== 2) throw new FdtError(`expected a u64 (two cells), found ${cells.length} cell(s)`);
  return cellsToBigint(cells);
}

/** `cells` (most significant first) as one number. */
export function cellsToBigint(cells: readonly number[]): bigint {
  return cells.reduce((acc, c) => (acc << 32n) | BigInt(c), 0n);
}

/** The value as a string list: NUL-terminated strings, none empty except a lone "". */
export function decodeStringList(value: Uint8Array): string[] {
  if (value.length === 0 || value[value.length - 1] !== 0) throw new FdtError("a string value must end with a NUL");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(value.subarray(0, value.length - 1));
  } catch {
    throw new FdtError("a string value is not UTF-8");
  }
  return text.split("\0");
}

/** The value as exactly one string. */
export function decodeString(value: Uint8Array): string {
  const list = decodeStringList(value);
  if (list.length !== 1) throw new FdtError(`expected one string, found ${list.length}`);
  return list[0]!;
}
