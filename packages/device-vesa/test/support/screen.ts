import { VesaScreen } from "../../src/screen.js";
import { VbeEnable, VbeIndex } from "../../src/vbe/registers.js";
import { patternColour } from "./pattern.js";

/** Sets a mode the way a guest does: disable, XRES, YRES, BPP, enable with LFB. */
export function setMode(screen: VesaScreen, width: number, height: number, bpp = 32): void {
  const v = screen.vbe;
  v.write(VbeIndex.ENABLE, 0);
  v.write(VbeIndex.XRES, width);
  v.write(VbeIndex.YRES, height);
  v.write(VbeIndex.BPP, bpp);
  v.write(VbeIndex.ENABLE, VbeEnable.ENABLED | VbeEnable.LFB_ENABLED);
}

/** Draws the test pattern into a 32 bpp mode's framebuffer bytes (B, G, R, X). */
export function drawPattern(fb: Uint8Array, width: number, height: number, colour = patternColour): void {
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [r, g, b] = colour(x, y);
      fb.set([b, g, r, 0], (y * width + x) * 4);
    }
}

export function screenWithPattern(width: number, height: number, fbSize = 4 << 20): VesaScreen {
  const screen = new VesaScreen(new Uint8Array(fbSize));
  setMode(screen, width, height);
  drawPattern(screen.fb, width, height);
  return screen;
}
