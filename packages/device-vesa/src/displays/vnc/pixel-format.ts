import type { Rect, RgbaFrame } from "../../framebuffer.js";

/** An RFB PIXEL_FORMAT: how a client wants pixels on the wire. */
export interface PixelFormat {
  readonly bitsPerPixel: number;
  readonly depth: number;
  readonly bigEndian: boolean;
  readonly trueColour: boolean;
  readonly redMax: number;
  readonly greenMax: number;
  readonly blueMax: number;
  readonly redShift: number;
  readonly greenShift: number;
  readonly blueShift: number;
}

/** What the server announces: 32 bpp, depth 24, little-endian, 0x00RRGGBB. */
export const SERVER_PIXEL_FORMAT: PixelFormat = {
  bitsPerPixel: 32,
  depth: 24,
  bigEndian: false,
  trueColour: true,
  redMax: 255,
  greenMax: 255,
  blueMax: 255,
  redShift: 16,
  greenShift: 8,
  blueShift: 0,
};

export function writePixelFormat(pf: PixelFormat, out: Buffer, at: number): void {
  out[at] = pf.bitsPerPixel;
  out[at + 1] = pf.depth;
  out[at + 2] = pf.bigEndian ? 1 : 0;
  out[at + 3] = pf.trueColour ? 1 : 0;
  out.writeUInt16BE(pf.redMax, at + 4);
  out.writeUInt16BE(pf.greenMax, at + 6);
  out.writeUInt16BE(pf.blueMax, at + 8);
  out[at + 10] = pf.redShift;
  out[at + 11] = pf.greenShift;
  out[at + 12] = pf.blueShift;
  out.fill(0, at + 13, at + 16);
}

/** Parses 16 bytes of PIXEL_FORMAT; returns a reason string for formats the server cannot produce. */
export function readPixelFormat(buf: Buffer, at: number): PixelFormat | string {
  const pf: PixelFormat = {
    bitsPerPixel: buf[at]!,
    depth: buf[at + 1]!,
    bigEndian: buf[at + 2] !== 0,
    trueColour: buf[at + 3] !== 0,
    redMax: buf.readUInt16BE(at + 4),
    greenMax: buf.readUInt16BE(at + 6),
    blueMax: buf.readUInt16BE(at + 8),
    redShift: buf[at + 10]!,
    greenShift: buf[at + 11]!,
    blueShift: buf[at + 12]!,
  };
  if (![8, 16, 32].includes(pf.bitsPerPixel)) return `bits-per-pixel ${pf.bitsPerPixel} (must be 8, 16 or 32)`;
  if (!pf.trueColour) return "colour-map pixel formats are not supported (true colour only)";
  for (const [max, shift, name] of [
    [pf.redMax, pf.redShift, "red"],
    [pf.greenMax, pf.greenShift, "green"],
    [pf.blueMax, pf.blueShift, "blue"],
  ] as const) {
    if (max === 0 || (max & (max + 1)) !== 0) return `${name}-max ${max} is not 2^n-1`;
    if (shift + Math.log2(max + 1) > pf.bitsPerPixel) return `${name} channel (max ${max}, shift ${shift}) does not fit in ${pf.bitsPerPixel} bits`;
  }
  return pf;
}

const isServerFormat = (pf: PixelFormat): boolean =>
  pf.bitsPerPixel === 32 && !pf.bigEndian && pf.redMax === 255 && pf.greenMax === 255 && pf.blueMax === 255 && pf.redShift === 16 && pf.greenShift === 8 && pf.blueShift === 0;

/** Pixels of `rect` of an RGBA picture in the client's format, rows packed: the body of a Raw rectangle. */
export function encodePixels(frame: RgbaFrame, rect: Rect, pf: PixelFormat): Buffer {
  const bytes = pf.bitsPerPixel >> 3;
  const out = Buffer.alloc(rect.width * rect.height * bytes);
  const src = frame.rgba;
  let o = 0;
  if (isServerFormat(pf)) {
    for (let y = rect.y; y < rect.y + rect.height; y++) {
      for (let i = (y * frame.width + rect.x) * 4, end = i + rect.width * 4; i < end; i += 4, o += 4) {
        out[o] = src[i + 2]!;
        out[o + 1] = src[i + 1]!;
        out[o + 2] = src[i]!;
      }
    }
    return out;
  }
  // Channel scaling tables: 8-bit value -> value already shifted into place.
  const scale = (max: number, shift: number) => Uint32Array.from({ length: 256 }, (_, v) => (Math.round((v * max) / 255) << shift) >>> 0);
  const r = scale(pf.redMax, pf.redShift);
  const g = scale(pf.greenMax, pf.greenShift);
  const b = scale(pf.blueMax, pf.blueShift);
  for (let y = rect.y; y < rect.y + rect.height; y++) {
    for (let i = (y * frame.width + rect.x) * 4, end = i + rect.width * 4; i < end; i += 4, o += bytes) {
      const p = (r[src[i]!]! | g[src[i + 1]!]! | b[src[i + 2]!]!) >>> 0;
      if (bytes === 1) out[o] = p;
      else if (bytes === 2) pf.bigEndian ? out.writeUInt16BE(p, o) : out.writeUInt16LE(p, o);
      else pf.bigEndian ? out.writeUInt32BE(p, o) : out.writeUInt32LE(p, o);
    }
  }
  return out;
}
