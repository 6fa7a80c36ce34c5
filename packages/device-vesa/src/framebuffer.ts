import type { Scanout } from "./vbe/mode.js";

/** A picture in RGBA order, 4 bytes per pixel, rows packed. */
export interface RgbaFrame {
  readonly width: number;
  readonly height: number;
  readonly rgba: Uint8Array;
}

export interface Rect {
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
}

/** One colour channel of a packed pixel: its bit position and width. */
export interface Channel {
  readonly shift: number;
  readonly bits: number;
}

/** How a depth packs red, green and blue into little-endian pixels (the layout Linux and the Bochs VBE use). */
export interface PixelLayout {
  readonly bpp: number;
  readonly bytes: number;
  readonly red: Channel;
  readonly green: Channel;
  readonly blue: Channel;
}

const LAYOUTS: Record<number, PixelLayout> = {
  15: { bpp: 15, bytes: 2, red: { shift: 10, bits: 5 }, green: { shift: 5, bits: 5 }, blue: { shift: 0, bits: 5 } },
  16: { bpp: 16, bytes: 2, red: { shift: 11, bits: 5 }, green: { shift: 5, bits: 6 }, blue: { shift: 0, bits: 5 } },
  24: { bpp: 24, bytes: 3, red: { shift: 16, bits: 8 }, green: { shift: 8, bits: 8 }, blue: { shift: 0, bits: 8 } },
  32: { bpp: 32, bytes: 4, red: { shift: 16, bits: 8 }, green: { shift: 8, bits: 8 }, blue: { shift: 0, bits: 8 } },
};

export function pixelLayout(bpp: number): PixelLayout {
  const layout = LAYOUTS[bpp];
  if (!layout) throw new RangeError(`no pixel layout for ${bpp} bpp`);
  return layout;
}

/** What displays show while the guest has no mode enabled. */
export const NO_SIGNAL = { width: 640, height: 480 } as const;

/** Scales an n-bit channel value to 8 bits by repeating its high bits (so full intensity stays 255). */
function expand(value: number, bits: number): number {
  if (bits >= 8) return value & 0xff;
  return ((value << (8 - bits)) | (value >> (2 * bits - 8 > 0 ? 2 * bits - 8 : 0))) & 0xff;
}

/** Precomputed channel expansion for 15/16 bpp: 64 Ki entries of packed RGB. */
const expandTables = new Map<number, Uint32Array>();
function table16(layout: PixelLayout): Uint32Array {
  let t = expandTables.get(layout.bpp);
  if (!t) {
    t = new Uint32Array(0x10000);
    const ch = (p: number, c: Channel) => expand((p >> c.shift) & ((1 << c.bits) - 1), c.bits);
    for (let p = 0; p < 0x10000; p++) t[p] = (ch(p, layout.red) | (ch(p, layout.green) << 8) | (ch(p, layout.blue) << 16) | 0xff000000) >>> 0;
    expandTables.set(layout.bpp, t);
  }
  return t;
}

/**
 * Converts `rect` of the scanout to RGBA into `out` at (outX, outY) of a picture `outWidth` pixels wide.
 * The caller clips `rect` to the scanout; the scanout was checked to fit in `fb` when the mode was enabled.
 */
export function convertToRgba(fb: Uint8Array, scanout: Scanout, rect: Rect, out: Uint8Array, outWidth: number, outX = rect.x, outY = rect.y, palette?: Palette): void {
  const out32 = new Uint32Array(out.buffer, out.byteOffset, out.byteLength >> 2);
  if (scanout.bpp === 8) {
    // Palettised: each byte (masked by the PEL mask) indexes the DAC's RGBA words; black without a DAC.
    const words = palette?.words;
    const mask = palette?.pelMask ?? 0xff;
    for (let row = 0; row < rect.height; row++) {
      let src = scanout.offset + (rect.y + row) * scanout.stride + rect.x;
      let dst = (outY + row) * outWidth + outX;
      const end = dst + rect.width;
      for (; dst < end; dst++, src++) out32[dst] = words ? words[fb[src]! & mask]! : 0xff000000;
    }
    return;
  }
  const layout = pixelLayout(scanout.bpp);
  const bytes = layout.bytes;
  const lut = bytes === 2 ? table16(layout) : undefined;
  // 32 bpp with 4-byte alignment: whole-word reads, swapping R and B (0x00RRGGBB -> 0xFFBBGGRR in memory order).
  if (bytes === 4 && (fb.byteOffset + scanout.offset) % 4 === 0 && scanout.stride % 4 === 0) {
    const words = new Uint32Array(fb.buffer, fb.byteOffset, fb.byteLength >> 2);
    for (let row = 0; row < rect.height; row++) {
      let src = (scanout.offset + (rect.y + row) * scanout.stride) / 4 + rect.x;
      let dst = (outY + row) * outWidth + outX;
      const end = dst + rect.width;
      for (; dst < end; dst++, src++) {
        const p = words[src]!;
        out32[dst] = (((p >>> 16) & 0xff) | (p & 0xff00) | ((p & 0xff) << 16) | 0xff000000) >>> 0;
      }
    }
    return;
  }
  for (let row = 0; row < rect.height; row++) {
    let src = scanout.offset + (rect.y + row) * scanout.stride + rect.x * bytes;
    let dst = (outY + row) * outWidth + outX;
    const end = dst + rect.width;
    if (lut) {
      for (; dst < end; dst++, src += 2) out32[dst] = lut[fb[src]! | (fb[src + 1]! << 8)]!;
    } else {
      // RGBA in memory is 0xAABBGGRR as a little-endian 32-bit word; the source is B, G, R(, X).
      for (; dst < end; dst++, src += bytes) out32[dst] = (fb[src + 2]! | (fb[src + 1]! << 8) | (fb[src]! << 16) | 0xff000000) >>> 0;
    }
  }
}

/** An 8 bpp palette: RGBA words by index and the VGA PEL mask applied to pixel values. */
export interface Palette {
  readonly words: Uint32Array;
  readonly pelMask: number;
}

/** The whole visible picture as RGBA, or a black NO_SIGNAL picture when no mode is enabled. */
export function captureFrame(fb: Uint8Array, scanout: Scanout | undefined, palette?: Palette): RgbaFrame {
  if (!scanout) {
    const rgba = new Uint8Array(NO_SIGNAL.width * NO_SIGNAL.height * 4);
    for (let i = 3; i < rgba.length; i += 4) rgba[i] = 0xff;
    return { ...NO_SIGNAL, rgba };
  }
  const rgba = new Uint8Array(scanout.width * scanout.height * 4);
  convertToRgba(fb, scanout, { x: 0, y: 0, width: scanout.width, height: scanout.height }, rgba, scanout.width, 0, 0, palette);
  return { width: scanout.width, height: scanout.height, rgba };
}

/** Packs an 8-bit-per-channel colour into the layout's little-endian bytes at `fb[offset]` (for guests and tests). */
export function packPixel(layout: PixelLayout, r: number, g: number, b: number): number {
  const ch = (v: number, c: Channel) => ((v & 0xff) >> (8 - c.bits)) << c.shift;
  return (ch(r, layout.red) | ch(g, layout.green) | ch(b, layout.blue)) >>> 0;
}
