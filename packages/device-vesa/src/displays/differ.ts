import type { Rect, RgbaFrame } from "../framebuffer.js";

export const TILE = 64;

/**
 * Remembers the last picture a client was sent and finds the tiles that differ from a new picture, so an
 * incremental update carries only what changed. `rows` narrows the comparison to scanlines the dirty log flagged.
 */
export class FrameDiffer {
  private last: RgbaFrame | undefined;

  /** Forget what was sent: the next diff reports the whole picture. */
  reset(): void {
    this.last = undefined;
  }

  /** Changed rectangles (tiles merged along rows) between the last sent picture and `frame`. Records nothing. */
  changes(frame: RgbaFrame, rows?: Uint8Array): Rect[] {
    const last = this.last;
    if (!last || last.width !== frame.width || last.height !== frame.height) return [{ x: 0, y: 0, width: frame.width, height: frame.height }];
    const a = new Uint32Array(last.rgba.buffer, last.rgba.byteOffset, last.rgba.length >> 2);
    const b = new Uint32Array(frame.rgba.buffer, frame.rgba.byteOffset, frame.rgba.length >> 2);
    const rects: Rect[] = [];
    const w = frame.width;
    for (let ty = 0; ty < frame.height; ty += TILE) {
      const th = Math.min(TILE, frame.height - ty);
      let runStart = -1;
      for (let tx = 0; tx <= w; tx += TILE) {
        const changed = tx < w && tileDiffers(a, b, w, tx, ty, Math.min(TILE, w - tx), th, rows);
        if (changed && runStart < 0) runStart = tx;
        if (!changed && runStart >= 0) {
          rects.push({ x: runStart, y: ty, width: Math.min(tx, w) - runStart, height: th });
          runStart = -1;
        }
      }
    }
    return rects;
  }

  /** Records a region as sent (a non-incremental request for part of the screen). */
  markSent(frame: RgbaFrame, rect: Rect): void {
    if (!this.last || this.last.width !== frame.width || this.last.height !== frame.height) {
      this.last = { width: frame.width, height: frame.height, rgba: new Uint8Array(frame.rgba.length) };
    }
    for (let y = rect.y; y < rect.y + rect.height; y++) {
      const from = (y * frame.width + rect.x) * 4;
      this.last.rgba.set(frame.rgba.subarray(from, from + rect.width * 4), from);
    }
  }
}

function tileDiffers(a: Uint32Array, b: Uint32Array, w: number, x: number, y: number, tw: number, th: number, rows?: Uint8Array): boolean {
  for (let row = y; row < y + th; row++) {
    if (rows && !rows[row]) continue;
    const start = row * w + x;
    for (let i = start; i < start + tw; i++) if (a[i] !== b[i]) return true;
  }
  return false;
}
