import { type DirtySubscriber, dirtyRows } from "../dirty.js";
import { convertToRgba, type RgbaFrame } from "../framebuffer.js";
import type { FrameSource } from "../screen.js";
import type { Scanout } from "../vbe/mode.js";

/** What changed since a consumer last looked. */
export interface ScreenChange {
  readonly frame: RgbaFrame;
  /** Scanlines that may differ; undefined when every line may. */
  readonly rows: Uint8Array | undefined;
}

const sameScanout = (a: Scanout | undefined, b: Scanout | undefined): boolean =>
  a === b || (!!a && !!b && a.width === b.width && a.height === b.height && a.bpp === b.bpp && a.stride === b.stride && a.offset === b.offset);

/**
 * One consumer's (a VNC or browser client's) copy of the picture, kept current cheaply: with a dirty log only the
 * scanlines on written pages are converted again; without one, or after a mode change, the whole picture is.
 */
export class ScreenTracker {
  private readonly dirty: DirtySubscriber;
  private current: RgbaFrame | undefined;
  private scanout: Scanout | undefined;

  constructor(private readonly source: FrameSource) {
    this.dirty = source.subscribeDirty();
  }

  /** The picture as of the last update(). */
  get frame(): RgbaFrame {
    return (this.current ??= this.source.capture());
  }

  /** Brings the picture up to date. Returns undefined when the dirty log says nothing was written. */
  update(): ScreenChange | undefined {
    const dirty = this.dirty.take();
    const scanout = this.source.scanout;
    if (!this.current || dirty.all || !sameScanout(scanout, this.scanout) || !scanout) {
      const unchanged = !!this.current && !dirty.all && sameScanout(scanout, this.scanout);
      if (unchanged) return undefined; // no mode and nothing new: the black picture stands
      this.scanout = scanout;
      this.current = this.source.capture();
      return { frame: this.current, rows: undefined };
    }
    const rows = dirtyRows(dirty, scanout);
    let any = false;
    for (let y = 0; y < rows.length; y++) {
      if (!rows[y]) continue;
      any = true;
      convertToRgba(this.source.fb, scanout, { x: 0, y, width: scanout.width, height: 1 }, this.current.rgba, scanout.width, 0, y, this.source.palette);
    }
    return any ? { frame: this.current, rows } : undefined;
  }

  close(): void {
    this.dirty.close();
  }
}
