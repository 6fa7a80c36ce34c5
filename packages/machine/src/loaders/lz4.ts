/** Decodes one LZ4 block (no frame) into `out` starting at `at`; returns the new output position. */
export function lz4DecodeBlock(src: Uint8Array, out: Uint8Array, at: number): number {
  let ip = 0;
  let op = at;
  const end = src.length;
  const fail = (why: string): never => {
    throw new RangeError(`LZ4: corrupt block (${why} at input ${ip})`);
  };
  while (ip < end) {
    const token = src[ip++]!;
    let literals = token >> 4;
    if (literals === 15) {
      let b: number;
      do {
        if (ip >= end) fail("truncated literal length");
        b = src[ip++]!;
        literals += b;
      } while (b === 255);
    }
    if (ip + literals > end) fail("literals past the end");
    if (op + literals > out.length) fail("output overflow");
    out.set(src.subarray(ip, ip + literals), op);
    ip += literals;
    op += literals;
    if (ip >= end) break; // the last sequence has literals only
    if (ip + 2 > end) fail("truncated offset");
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op - at) fail("bad match offset");
    let length = token & 15;
    if (length === 15) {
      let b: number;
      do {
        if (ip >= end) fail("truncated match length");
        b = src[ip++]!;
        length += b;
      } while (b === 255);
    }
    length += 4;
    if (op + length > out.length) fail("output overflow");
    let from = op - offset;
    if (offset >= length) {
      out.copyWithin(op, from, from + length);
      op += length;
    } else {
      for (let i = 0; i < length; i++) out[op++] = out[from++]!;
    }
  }
  return op;
}

const LEGACY_MAGIC = 0x184c2102;
/** Largest decompressed block of the legacy format. */
const LEGACY_BLOCK = 8 * 1024 * 1024;

/**
 * Decodes the LZ4 "legacy" stream format (what `lz4 -l` and the Linux kernel build produce): a magic number,
 * then blocks each prefixed with its compressed size. `expectedSize` bounds the output.
 */
export function lz4DecodeLegacy(src: Uint8Array, expectedSize: number): Uint8Array {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  if (src.length < 4 || view.getUint32(0, true) !== LEGACY_MAGIC) throw new RangeError("LZ4: not a legacy-format stream");
  const out = new Uint8Array(expectedSize);
  let ip = 4;
  let op = 0;
  while (ip + 4 <= src.length) {
    const size = view.getUint32(ip, true);
    if (size === LEGACY_MAGIC) {
      ip += 4; // concatenated stream
      continue;
    }
    if (size === 0 || size > LEGACY_BLOCK + LEGACY_BLOCK / 255 + 16 || ip + 4 + size > src.length) break; // trailer
    op = lz4DecodeBlock(src.subarray(ip + 4, ip + 4 + size), out, op);
    ip += 4 + size;
  }
  return out.subarray(0, op);
}
