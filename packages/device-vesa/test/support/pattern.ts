import type { RgbaFrame } from "../../src/framebuffer.js";

/**
 * The test picture: 32x32 blocks of distinct colours (so lossy JPEG clients can be compared with a small
 * tolerance away from block edges), with a 1-pixel diagonal and a single odd pixel for the exact comparisons.
 */
export function patternColour(x: number, y: number): [number, number, number] {
  if (x === y) return [255, 255, 255];
  if (x === 77 && y === 13) return [1, 2, 3];
  const bx = x >> 5;
  const by = y >> 5;
  return [(bx * 53 + by * 17) & 0xff, (bx * 29 + by * 71 + 40) & 0xff, (bx * 7 + by * 113 + 90) & 0xff];
}

export function expectedFrame(width: number, height: number, colour = patternColour): RgbaFrame {
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [r, g, b] = colour(x, y);
      rgba.set([r, g, b, 255], (y * width + x) * 4);
    }
  return { width, height, rgba };
}

/** First differing pixel of two pictures beyond `tolerance` per channel (pixels where `skip` is true are ignored). */
export function firstDifference(a: RgbaFrame, b: RgbaFrame, tolerance = 0, skip?: (x: number, y: number) => boolean): string | undefined {
  if (a.width !== b.width || a.height !== b.height) return `size ${a.width}x${a.height} vs ${b.width}x${b.height}`;
  for (let y = 0; y < a.height; y++)
    for (let x = 0; x < a.width; x++) {
      if (skip?.(x, y)) continue;
      const i = (y * a.width + x) * 4;
      for (let c = 0; c < 3; c++) {
        if (Math.abs(a.rgba[i + c]! - b.rgba[i + c]!) > tolerance) {
          return `pixel (${x},${y}): ${[...a.rgba.subarray(i, i + 3)]} vs ${[...b.rgba.subarray(i, i + 3)]}`;
        }
      }
    }
  return undefined;
}
