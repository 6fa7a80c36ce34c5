/**
 * A small declarative AML encoder (ACPI 6, chapter 20): each function returns the bytes of one term, so a
 * definition block is built by nesting calls, with no ASL compiler at build time. Only the terms the DSDT needs.
 */

export type Aml = Uint8Array;

const Op = {
  zero: 0x00,
  one: 0x01,
  name: 0x08,
  bytePrefix: 0x0a,
  wordPrefix: 0x0b,
  dwordPrefix: 0x0c,
  stringPrefix: 0x0d,
  qwordPrefix: 0x0e,
  scope: 0x10,
  buffer: 0x11,
  package: 0x12,
  varPackage: 0x13,
  extPrefix: 0x5b,
  device: 0x82, // after extPrefix
  ones: 0xff,
  rootChar: 0x5c,
  parentPrefix: 0x5e,
  dualNamePrefix: 0x2e,
  multiNamePrefix: 0x2f,
  nullName: 0x00,
} as const;

/** The largest value a PkgLength can hold (28 bits). */
export const PKG_LENGTH_MAX = 2 ** 28 - 1;

export function concat(...parts: readonly Aml[]): Aml {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Encodes a PkgLength value (which counts its own bytes): one byte up to 63, else a lead byte (bits 7-6: how
 * many bytes follow, bits 3-0: the low nibble) and 1-3 more bytes of the value from bit 4 upwards.
 */
export function pkgLengthValue(value: number, bytes: 1 | 2 | 3 | 4): Aml {
  const limit = bytes === 1 ? 63 : 2 ** (4 + 8 * (bytes - 1)) - 1;
  if (!Number.isInteger(value) || value < 0 || value > limit) throw new RangeError(`AML: PkgLength ${value} does not fit in ${bytes} byte(s)`);
  if (bytes === 1) return Uint8Array.of(value);
  const out = new Uint8Array(bytes);
  out[0] = ((bytes - 1) << 6) | (value & 0x0f);
  for (let i = 1; i < bytes; i++) out[i] = Math.floor(value / 2 ** (4 + 8 * (i - 1))) & 0xff;
  return out;
}

/** Prefixes `body` with the shortest PkgLength that covers the body plus the PkgLength itself. */
export function withPkgLength(body: Aml): Aml {
  for (const n of [1, 2, 3, 4] as const) {
    const total = body.length + n;
    if (total <= (n === 1 ? 63 : 2 ** (4 + 8 * (n - 1)) - 1)) return concat(pkgLengthValue(total, n), body);
  }
  throw new RangeError(`AML: a package of ${body.length} bytes is longer than a PkgLength can describe`);
}

/** A NameSeg: a lead character A-Z or _, then up to three of A-Z, 0-9, _, padded with '_' to four. */
export function nameSeg(seg: string): Aml {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(seg)) throw new RangeError(`AML: "${seg}" is not a valid NameSeg`);
  const padded = seg.padEnd(4, "_");
  return Uint8Array.from(padded, (c) => c.charCodeAt(0));
}

/** A NameString: optional root (\) or parent (^) prefixes, then dot-separated NameSegs ("" is the null name). */
export function nameString(path: string): Aml {
  const m = /^(\\|\^*)(.*)$/.exec(path)!;
  const prefix = Uint8Array.from(m[1]!, (c) => (c === "\\" ? Op.rootChar : Op.parentPrefix));
  const segs = m[2] === "" ? [] : m[2]!.split(".").map(nameSeg);
  let body: Aml;
  if (segs.length === 0) body = Uint8Array.of(Op.nullName);
  else if (segs.length === 1) body = segs[0]!;
  else if (segs.length === 2) body = concat(Uint8Array.of(Op.dualNamePrefix), ...segs);
  else if (segs.length <= 255) body = concat(Uint8Array.of(Op.multiNamePrefix, segs.length), ...segs);
  else throw new RangeError(`AML: a NamePath of ${segs.length} segments is too long`);
  return concat(prefix, body);
}

function littleEndian(value: bigint, bytes: number): number[] {
  return Array.from({ length: bytes }, (_, i) => Number((value >> BigInt(8 * i)) & 0xffn));
}

/** An Integer in its shortest form: Zero, One, or a Byte/Word/DWord/QWord prefix. */
export function integer(v: number | bigint): Aml {
  const value = BigInt(v);
  if (value < 0n || value > 0xffff_ffff_ffff_ffffn) throw new RangeError(`AML: integer ${v} is outside 0..2^64-1`);
  if (value === 0n) return Uint8Array.of(Op.zero);
  if (value === 1n) return Uint8Array.of(Op.one);
  if (value <= 0xffn) return Uint8Array.of(Op.bytePrefix, Number(value));
  if (value <= 0xffffn) return Uint8Array.of(Op.wordPrefix, ...littleEndian(value, 2));
  if (value <= 0xffff_ffffn) return Uint8Array.of(Op.dwordPrefix, ...littleEndian(value, 4));
  return Uint8Array.of(Op.qwordPrefix, ...littleEndian(value, 8));
}

/** OnesOp: all bits set (the integer width depends on the definition block's revision). */
export function ones(): Aml {
  return Uint8Array.of(Op.ones);
}

/** A null-terminated ASCII string (no NUL inside). */
export function string(s: string): Aml {
  if (!/^[\x01-\x7f]*$/.test(s)) throw new RangeError(`AML: strings must be ASCII without NUL`);
  return concat(Uint8Array.of(Op.stringPrefix), Uint8Array.from(s, (c) => c.charCodeAt(0)), Uint8Array.of(0));
}

/** Buffer(n) { bytes }: the size is the byte count. */
export function buffer(bytes: Aml): Aml {
  return concat(Uint8Array.of(Op.buffer), withPkgLength(concat(integer(bytes.length), bytes)));
}

/** Package { elements } (at most 255 elements; use varPackage for more). */
export function aPackage(elements: readonly Aml[]): Aml {
  if (elements.length > 255) throw new RangeError(`AML: a Package holds at most 255 elements (got ${elements.length}); use VarPackage`);
  return concat(Uint8Array.of(Op.package), withPkgLength(concat(Uint8Array.of(elements.length), ...elements)));
}

/** VarPackage(n) { elements }: the element count is an integer term, so any number of elements. */
export function varPackage(elements: readonly Aml[]): Aml {
  return concat(Uint8Array.of(Op.varPackage), withPkgLength(concat(integer(elements.length), ...elements)));
}

/** A Package when it fits, else a VarPackage. */
export function packageOf(elements: readonly Aml[]): Aml {
  return elements.length <= 255 ? aPackage(elements) : varPackage(elements);
}

/** Name(path, object). */
export function name(path: string, object: Aml): Aml {
  return concat(Uint8Array.of(Op.name), nameString(path), object);
}

/** Scope(path) { terms }. */
export function scope(path: string, terms: readonly Aml[]): Aml {
  return concat(Uint8Array.of(Op.scope), withPkgLength(concat(nameString(path), ...terms)));
}

/** Device(path) { terms }. */
export function device(path: string, terms: readonly Aml[]): Aml {
  return concat(Uint8Array.of(Op.extPrefix, Op.device), withPkgLength(concat(nameString(path), ...terms)));
}

/**
 * The 32-bit compressed EISA ID of "AAAHHHH" (three letters A-Z, four hex digits): the letters as 5-bit values
 * (A = 1) and the product number, stored big-endian, so "PNP0A08" reads as the little-endian DWord 0x080AD041.
 */
export function eisaIdValue(id: string): number {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new RangeError(`AML: "${id}" is not an EISA ID (three letters, four hex digits)`);
  const letters = [0, 1, 2].map((i) => id.charCodeAt(i) - 0x40);
  const vendor = (letters[0]! << 10) | (letters[1]! << 5) | letters[2]!;
  const product = parseInt(id.slice(3), 16);
  const bytes = [vendor >> 8, vendor & 0xff, product >> 8, product & 0xff];
  return (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
}

/** EisaId("AAAHHHH") as an integer term (always a DWord, as ASL compilers emit it). */
export function eisaId(id: string): Aml {
  return Uint8Array.of(Op.dwordPrefix, ...littleEndian(BigInt(eisaIdValue(id)), 4));
}
