import { crypto, zlib } from "./builtins.js";

/**
 * XZ decoding for kernels compressed with `xz --x86 --lzma2` (Linux's CONFIG_KERNEL_XZ). The LZMA2 part is
 * decoded by xz-decompress (xz-embedded compiled to WebAssembly), which has no BCJ filters: each block is
 * re-wrapped into a plain LZMA2 stream without a check, decoded there, then the x86 BCJ filter is undone here and
 * the block's own check (CRC32 or SHA-256) verified against the result.
 */

const MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const FOOTER_MAGIC = [0x59, 0x5a];
const FILTER_X86 = 0x04;
const FILTER_LZMA2 = 0x21;
const CHECK_SIZE = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];
const CHECK_CRC32 = 0x01;
const CHECK_SHA256 = 0x0a;

class XzFormatError extends Error {}
const fail = (why: string): never => {
  throw new XzFormatError(`xz: ${why}`);
};

/** A little reader of the container's variable-length integers (7 bits a byte, at most 9 bytes). */
class Cursor {
  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
  ) {}
  byte(): number {
    if (this.pos >= this.bytes.length) fail("truncated");
    return this.bytes[this.pos++]!;
  }
  varint(): number {
    let value = 0;
    for (let i = 0; i < 9; i++) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** (7 * i);
      if (!(b & 0x80)) return value;
    }
    return fail("bad variable-length integer");
  }
}

const u32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset + at, 4).getUint32(0, true);
const pad4 = (n: number) => (n + 3) & ~3;

/** Checks the CRC32 of bytes [from, to), stored at `at` (by default right after them). */
function checkCrc(bytes: Uint8Array, from: number, to: number, what: string, at = to): void {
  if (zlib().crc32(bytes.subarray(from, to)) >>> 0 !== u32(bytes, at)) fail(`${what} CRC32 mismatch`);
}

interface Block {
  /** The LZMA2 data (without header, padding or check). */
  readonly lzma2: Uint8Array;
  readonly lzma2Props: number;
  /** BCJ x86 start offset, or undefined without the filter. */
  readonly x86Start?: number;
  readonly uncompressed: number;
  readonly check: Uint8Array;
}

interface Parsed {
  readonly checkType: number;
  readonly blocks: Block[];
}

/** Splits a single-stream .xz file into its blocks, by the index at its end. */
function parse(xz: Uint8Array): Parsed {
  if (xz.length < 32 || !MAGIC.every((b, i) => xz[i] === b)) fail("no stream header magic");
  checkCrc(xz, 6, 8, "stream header");
  if (xz[6] !== 0 || xz[7]! > 0x0f) fail("unsupported stream flags");
  const checkType = xz[7]!;
  let end = xz.length;
  while (end >= 4 && u32(xz, end - 4) === 0) end -= 4; // stream padding
  const footer = end - 12;
  if (footer < 12 || xz[end - 2] !== FOOTER_MAGIC[0] || xz[end - 1] !== FOOTER_MAGIC[1]) fail("no stream footer magic");
  checkCrc(xz, footer + 4, footer + 10, "stream footer", footer);
  if (xz[footer + 8] !== xz[6] || xz[footer + 9] !== xz[7]) fail("stream header and footer disagree");
  const indexSize = (u32(xz, footer + 4) + 1) * 4;
  const indexStart = footer - indexSize;
  if (indexStart < 12) fail("index out of range");
  checkCrc(xz, indexStart, footer - 4, "index");
  const index = new Cursor(xz, indexStart);
  if (index.byte() !== 0) fail("bad index indicator");
  const count = index.varint();
  const records: Array<{ unpadded: number; uncompressed: number }> = [];
  for (let i = 0; i < count; i++) records.push({ unpadded: index.varint(), uncompressed: index.varint() });

  const checkSize = CHECK_SIZE[checkType]!;
  const blocks: Block[] = [];
  let pos = 12;
  for (const record of records) {
    const headerSize = (xz[pos]! + 1) * 4;
    if (xz[pos] === 0 || pos + headerSize > indexStart) fail("bad block header");
    checkCrc(xz, pos, pos + headerSize - 4, "block header");
    const h = new Cursor(xz, pos + 1);
    const flags = h.byte();
    if (flags & 0x3c) fail("unsupported block flags");
    if (flags & 0x40) h.varint(); // compressed size (the index has it too)
    if (flags & 0x80) h.varint(); // uncompressed size
    const filters: Array<{ id: number; props: Uint8Array }> = [];
    for (let f = 0; f <= (flags & 3); f++) {
      const id = h.varint();
      const size = h.varint();
      filters.push({ id, props: xz.subarray(h.pos, h.pos + size) });
      h.pos += size;
    }
    const last = filters.pop()!;
    if (last.id !== FILTER_LZMA2 || last.props.length !== 1) fail(`unsupported filter 0x${last.id.toString(16)} (only LZMA2)`);
    let x86Start: number | undefined;
    for (const f of filters) {
      if (f.id !== FILTER_X86 || filters.length > 1) fail(`unsupported filter 0x${f.id.toString(16)} (only x86 BCJ before LZMA2)`);
      x86Start = f.props.length === 4 ? u32(f.props, 0) : f.props.length === 0 ? 0 : fail("bad x86 BCJ properties");
    }
    const compressed = record.unpadded - headerSize - checkSize;
    const dataStart = pos + headerSize;
    const checkStart = dataStart + pad4(compressed);
    if (compressed <= 0 || checkStart + checkSize > indexStart) fail("block out of range");
    blocks.push({
      lzma2: xz.subarray(dataStart, dataStart + compressed),
      lzma2Props: last.props[0]!,
      x86Start,
      uncompressed: record.uncompressed,
      check: xz.subarray(checkStart, checkStart + checkSize),
    });
    pos = checkStart + checkSize;
  }
  if (pos !== indexStart) fail("blocks and index disagree");
  return { checkType, blocks };
}

function varintBytes(n: number): number[] {
  const out: number[] = [];
  do {
    const low = n % 128;
    n = Math.floor(n / 128);
    out.push(n > 0 ? low | 0x80 : low);
  } while (n > 0);
  return out;
}

function withCrc(bytes: number[]): number[] {
  const c = zlib().crc32(Uint8Array.from(bytes)) >>> 0;
  return [...bytes, c & 0xff, (c >>> 8) & 0xff, (c >>> 16) & 0xff, c >>> 24];
}

/** One block as a stream of its own: LZMA2 only, no check, so that xz-embedded can decode it. */
function plainStream(block: Block): Uint8Array {
  const flags = [0x00, 0x00];
  const header = [0x00, 0x00, FILTER_LZMA2, 0x01, block.lzma2Props];
  while ((header.length + 4) % 4) header.push(0);
  header[0] = (header.length + 4) / 4 - 1;
  const blockHeader = withCrc(header);
  const unpadded = blockHeader.length + block.lzma2.length;
  const index = [0x00, ...varintBytes(1), ...varintBytes(unpadded), ...varintBytes(block.uncompressed)];
  while (index.length % 4) index.push(0);
  const indexBytes = withCrc(index);
  // The footer's CRC32 comes first, over the backward size and the flags that follow it.
  const backward = withCrc([...[0, 1, 2, 3].map((i) => ((indexBytes.length / 4 - 1) >>> (8 * i)) & 0xff), ...flags]);
  const footer = [...backward.slice(6), ...backward.slice(0, 6)];
  const parts = [
    Uint8Array.from([...MAGIC, ...withCrc(flags).slice(0, 6)]),
    Uint8Array.from(blockHeader),
    block.lzma2,
    new Uint8Array(pad4(block.lzma2.length) - block.lzma2.length),
    Uint8Array.from(indexBytes),
    Uint8Array.from([...footer, ...FOOTER_MAGIC]),
  ];
  return Buffer.concat(parts);
}

async function lzma2(stream: Uint8Array, into: Uint8Array): Promise<void> {
  // Imported on first use: it sets up its WebAssembly decoder when loaded, which a run without an XZ kernel
  // (most runs) would pay at start-up (issue #17).
  const { default: xzDecompress } = await import("xz-decompress");
  const input = new Blob([stream]).stream();
  let at = 0;
  for await (const chunk of new xzDecompress.XzReadableStream(input) as unknown as AsyncIterable<Uint8Array>) {
    if (at + chunk.length > into.length) fail("more data than the index says");
    into.set(chunk, at);
    at += chunk.length;
  }
  if (at !== into.length) fail("less data than the index says");
}

const X86_ALLOWED = [true, true, true, false, true, false, false, false];
const X86_BIT = [0, 1, 2, 2, 3, 3, 3, 3];
const isMsByte = (b: number) => b === 0x00 || b === 0xff;

/**
 * Undoes the x86 BCJ filter in place: the encoder turned the relative targets of CALL (E8) and JMP (E9) into
 * absolute ones (position `start` + offset) where the top byte looks like a near address; this turns them back.
 * `prevMask` remembers which of the last three bytes were E8/E9 opcodes that were left alone.
 */
export function unfilterX86(buf: Uint8Array, start = 0): void {
  let prevMask = 0;
  let prevPos = -1;
  const limit = buf.length - 4;
  for (let i = 0; i < limit; i++) {
    if ((buf[i]! & 0xfe) !== 0xe8) continue;
    const gap = i - prevPos;
    if (gap > 3) {
      prevMask = 0;
    } else {
      prevMask = (prevMask << (gap - 1)) & 7;
      if (prevMask !== 0 && (!X86_ALLOWED[prevMask] || isMsByte(buf[i + 4 - X86_BIT[prevMask]!]!))) {
        prevPos = i;
        prevMask = (prevMask << 1) | 1;
        continue;
      }
    }
    prevPos = i;
    if (!isMsByte(buf[i + 4]!)) {
      prevMask = (prevMask << 1) | 1;
      continue;
    }
    let src = (buf[i + 1]! | (buf[i + 2]! << 8) | (buf[i + 3]! << 16) | (buf[i + 4]! << 24)) >>> 0;
    let dest: number;
    for (;;) {
      dest = (src - (start + i + 5)) >>> 0;
      if (prevMask === 0) break;
      const shift = X86_BIT[prevMask]! * 8;
      if (!isMsByte((dest >>> (24 - shift)) & 0xff)) break;
      src = (dest ^ (2 ** (32 - shift) - 1)) >>> 0;
    }
    // Bit 24 is the sign: the top byte becomes 00 or FF again.
    dest = (dest << 7) >> 7;
    buf[i + 1] = dest & 0xff;
    buf[i + 2] = (dest >>> 8) & 0xff;
    buf[i + 3] = (dest >>> 16) & 0xff;
    buf[i + 4] = (dest >>> 24) & 0xff;
    i += 4;
  }
}

function verify(checkType: number, data: Uint8Array, check: Uint8Array): void {
  if (checkType === CHECK_CRC32 && zlib().crc32(data) >>> 0 !== u32(check, 0)) fail("data CRC32 mismatch");
  if (checkType === CHECK_SHA256 && !crypto().createHash("sha256").update(data).digest().equals(check)) fail("data SHA-256 mismatch");
  // CRC64 and the reserved types are not verified; LZMA2 itself still catches most corruption.
}

/** Decodes a single-stream .xz file (LZMA2, optionally after the x86 BCJ filter). */
export async function xzDecode(xz: Uint8Array): Promise<Uint8Array> {
  const { checkType, blocks } = parse(xz);
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.uncompressed, 0));
  let at = 0;
  for (const block of blocks) {
    const part = out.subarray(at, at + block.uncompressed);
    try {
      await lzma2(plainStream(block), part);
    } catch (error) {
      if (error instanceof XzFormatError) throw error;
      fail(`LZMA2 data cannot be decoded: ${(error as Error).message}`);
    }
    if (block.x86Start !== undefined) unfilterX86(part, block.x86Start);
    verify(checkType, part, block.check);
    at += block.uncompressed;
  }
  return out;
}
