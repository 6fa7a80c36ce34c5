import { SCREEN_INFO_SIZE } from "@vmm/core";
import { pixelLayout } from "./framebuffer.js";
import type { Scanout } from "./vbe/mode.js";

/** Linux's orig_video_isVGA value for a VESA linear framebuffer. */
export const VIDEO_TYPE_VLFB = 0x23;
/** screen_info.capabilities: ext_lfb_base holds the high 32 bits of the base. */
export const VIDEO_CAPABILITY_64BIT_BASE = 1 << 1;

/**
 * What a Linux boot needs to drive the framebuffer without a driver (vesafb, or simplefb through sysfb): the
 * fields of struct screen_info, named as there.
 */
export interface ScreenInfo {
  orig_video_isVGA: number;
  lfb_width: number;
  lfb_height: number;
  lfb_depth: number;
  /** Low 32 bits of the framebuffer's guest-physical address. */
  lfb_base: number;
  ext_lfb_base: number;
  capabilities: number;
  /** For VIDEO_TYPE_VLFB, in 64 KiB units. */
  lfb_size: number;
  lfb_linelength: number;
  red_size: number;
  red_pos: number;
  green_size: number;
  green_pos: number;
  blue_size: number;
  blue_pos: number;
  rsvd_size: number;
  rsvd_pos: number;
  /** Number of framebuffer pages of this mode that fit (for panning). */
  pages: number;
}

/**
 * The screen_info for a framebuffer at `lfbBase` of `fbSize` bytes showing `scanout` (which must start at
 * offset 0: firmware-style framebuffers have no panning offset).
 */
export function screenInfo(lfbBase: number, fbSize: number, scanout: Scanout): ScreenInfo {
  if (!Number.isSafeInteger(lfbBase) || lfbBase < 0 || lfbBase % 4096) throw new RangeError(`framebuffer base 0x${lfbBase.toString(16)} is not page aligned`);
  if (scanout.offset !== 0) throw new RangeError("screen_info cannot describe a panned scanout");
  if (scanout.bpp === 8) throw new RangeError("screen_info: 8 bpp palette modes are not described (use 15/16/24/32 bpp)");
  const layout = pixelLayout(scanout.bpp);
  const used = layout.red.bits + layout.green.bits + layout.blue.bits;
  const spare = layout.bytes * 8 - used;
  const high = Math.floor(lfbBase / 2 ** 32);
  return {
    orig_video_isVGA: VIDEO_TYPE_VLFB,
    lfb_width: scanout.width,
    lfb_height: scanout.height,
    lfb_depth: scanout.bpp,
    lfb_base: lfbBase % 2 ** 32,
    ext_lfb_base: high,
    capabilities: high ? VIDEO_CAPABILITY_64BIT_BASE : 0,
    lfb_size: Math.ceil(fbSize / 0x10000),
    lfb_linelength: scanout.stride,
    red_size: layout.red.bits,
    red_pos: layout.red.shift,
    green_size: layout.green.bits,
    green_pos: layout.green.shift,
    blue_size: layout.blue.bits,
    blue_pos: layout.blue.shift,
    rsvd_size: spare,
    rsvd_pos: spare ? used : 0,
    pages: Math.max(1, Math.floor(fbSize / (scanout.stride * scanout.height))),
  };
}

/** Field offsets and widths in struct screen_info (packed, little-endian). */
const LAYOUT: ReadonlyArray<readonly [keyof ScreenInfo, number, 1 | 2 | 4]> = [
  ["orig_video_isVGA", 0x0f, 1],
  ["lfb_width", 0x12, 2],
  ["lfb_height", 0x14, 2],
  ["lfb_depth", 0x16, 2],
  ["lfb_base", 0x18, 4],
  ["lfb_size", 0x1c, 4],
  ["lfb_linelength", 0x24, 2],
  ["red_size", 0x26, 1],
  ["red_pos", 0x27, 1],
  ["green_size", 0x28, 1],
  ["green_pos", 0x29, 1],
  ["blue_size", 0x2a, 1],
  ["blue_pos", 0x2b, 1],
  ["rsvd_size", 0x2c, 1],
  ["rsvd_pos", 0x2d, 1],
  ["pages", 0x32, 2],
  ["capabilities", 0x36, 4],
  ["ext_lfb_base", 0x3a, 4],
];

/** The 64 bytes of struct screen_info, to place at offset 0 of x86 boot_params (other fields zero). */
export function encodeScreenInfo(info: ScreenInfo): Uint8Array {
  const bytes = new Uint8Array(SCREEN_INFO_SIZE);
  const view = new DataView(bytes.buffer);
  for (const [field, offset, size] of LAYOUT) {
    const v = info[field];
    if (size === 1) view.setUint8(offset, v);
    else if (size === 2) view.setUint16(offset, v, true);
    else view.setUint32(offset, v >>> 0, true);
  }
  return bytes;
}
