/** Bochs VBE ("DISPI") limits and mode arithmetic: what a guest may ask for and how a mode lays out memory. */

export const VBE_MAX_XRES = 2560;
export const VBE_MAX_YRES = 1600;
export const VBE_MAX_BPP = 32;
/** Depths the device implements; 8 bpp is palettised through the VGA DAC ports (vbe/dac.ts). */
export const VBE_SUPPORTED_BPP: readonly number[] = [8, 15, 16, 24, 32];

/** The mode registers as the guest programmed them. */
export interface VbeModeRegisters {
  readonly xres: number;
  readonly yres: number;
  readonly bpp: number;
  readonly virtWidth: number;
  readonly xOffset: number;
  readonly yOffset: number;
}

/** Where the visible picture lies in the framebuffer: what displays scan out. */
export interface Scanout {
  readonly width: number;
  readonly height: number;
  readonly bpp: number;
  /** Bytes from one line to the next (the virtual width times the bytes per pixel). */
  readonly stride: number;
  /** Byte offset of the top-left visible pixel (from X_OFFSET/Y_OFFSET). */
  readonly offset: number;
}

export function bytesPerPixel(bpp: number): number {
  return (bpp + 7) >> 3;
}

/** Lines of `stride` bytes that fit in the framebuffer: the virtual height the device reports. */
export function virtualHeight(fbSize: number, virtWidth: number, bpp: number): number {
  const stride = virtWidth * bytesPerPixel(bpp);
  return stride > 0 ? Math.floor(fbSize / stride) : 0;
}

/**
 * The scanout of a mode, or a reason why the mode cannot be shown: depth unsupported, resolution out of range,
 * or the visible window (with its offsets) not fitting in `fbSize` bytes.
 */
export function scanoutOf(mode: VbeModeRegisters, fbSize: number): Scanout | string {
  const { xres, yres, bpp } = mode;
  if (!VBE_SUPPORTED_BPP.includes(bpp)) return `unsupported depth ${bpp} bpp (supported: ${VBE_SUPPORTED_BPP.join(", ")})`;
  if (xres < 1 || xres > VBE_MAX_XRES || yres < 1 || yres > VBE_MAX_YRES) {
    return `resolution ${xres}x${yres} outside 1x1..${VBE_MAX_XRES}x${VBE_MAX_YRES}`;
  }
  const virtWidth = Math.max(mode.virtWidth, xres);
  const bypp = bytesPerPixel(bpp);
  const stride = virtWidth * bypp;
  if (mode.xOffset + xres > virtWidth) return `x offset ${mode.xOffset} puts the picture beyond the virtual width ${virtWidth}`;
  const offset = mode.yOffset * stride + mode.xOffset * bypp;
  const end = offset + (yres - 1) * stride + xres * bypp;
  if (end > fbSize) return `mode ${xres}x${yres}x${bpp} (virtual width ${virtWidth}, offset ${mode.xOffset},${mode.yOffset}) needs ${end} bytes, the framebuffer has ${fbSize}`;
  return { width: xres, height: yres, bpp, stride, offset };
}
