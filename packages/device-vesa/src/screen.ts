import { type DeviceState, decodeBytes, encodeBytes, type Logger, SnapshotError, stateData } from "@vmm/core";
import { deflateSync, inflateSync } from "node:zlib";
import { DirtyLog, type DirtySubscriber } from "./dirty.js";
import { captureFrame, type Palette, type RgbaFrame } from "./framebuffer.js";
import type { Scanout } from "./vbe/mode.js";
import { VgaDac } from "./vbe/dac.js";
import { VbeEnable, VbeRegisterFile } from "./vbe/registers.js";

/** The layout version of `VesaScreen.saveState`. */
const SCREEN_STATE_VERSION = 1;

/** Receives keys typed into a display, as X11 keysyms (what RFB KeyEvent carries). */
export type KeySink = (keysym: number, down: boolean) => void;

/** What displays read: the visible picture, what changed, mode changes; and where they send keys. */
export interface FrameSource {
  /** The framebuffer bytes (read-only for displays). */
  readonly fb: Uint8Array;
  readonly scanout: Scanout | undefined;
  /** The 8 bpp palette. */
  readonly palette: Palette;
  capture(): RgbaFrame;
  subscribeDirty(): DirtySubscriber;
  onModeChange(listener: (scanout: Scanout | undefined) => void): () => void;
  key(keysym: number, down: boolean): void;
}

/**
 * The device's picture state without PCI: framebuffer bytes, the VBE registers that describe them, the dirty
 * log, and the key sink. Guest writes reach `fb` directly (mapped RAM), never through this object.
 */
export class VesaScreen implements FrameSource {
  readonly vbe: VbeRegisterFile;
  readonly dac: VgaDac;
  readonly dirty: DirtyLog;
  /** Where typed keys go: the plugin points it at the machine's keyboard (core's Tokens.Keyboard) when there is one. */
  onKey: KeySink | undefined;
  private readonly listeners = new Set<(scanout: Scanout | undefined) => void>();

  constructor(
    readonly fb: Uint8Array,
    private readonly logger?: Logger,
  ) {
    this.dirty = new DirtyLog(fb.length);
    this.vbe = new VbeRegisterFile({
      fbSize: fb.length,
      onClear: () => {
        fb.fill(0);
        this.dirty.markAll();
      },
      onModeChange: (scanout) => {
        this.dirty.markAll();
        for (const l of this.listeners) l(scanout);
      },
      onRefused: (reason) => this.logger?.debug(reason),
    });
    // A palette change repaints every 8 bpp pixel without touching a page: displays must look at everything.
    this.dac = new VgaDac(
      () => (this.vbe.state.enable & VbeEnable.DAC_8BIT) !== 0,
      () => {
        if (this.vbe.scanout?.bpp === 8) this.dirty.markAll();
      },
    );
  }

  /**
   * The picture state as snapshot data: the VBE registers, the DAC, and the framebuffer's bytes (deflated: it is
   * the device's own memory, not guest RAM, so the snapshot must carry it). Version 1.
   */
  saveState(): DeviceState {
    return { version: SCREEN_STATE_VERSION, data: { vbe: this.vbe.saveState(), dac: this.dac.saveState(), framebuffer: encodeBytes(deflateSync(this.fb)) } };
  }

  /**
   * Restores `saveState` output into a screen with a framebuffer of the same size: everything is checked before
   * anything changes (SnapshotError naming `what`); displays then redraw everything.
   */
  restoreState(state: DeviceState | undefined, what: string): void {
    const data = stateData(state, what, SCREEN_STATE_VERSION);
    let fb: Uint8Array;
    try {
      fb = inflateSync(decodeBytes(data.framebuffer, `${what} framebuffer`), { maxOutputLength: this.fb.length });
    } catch (error) {
      if (error instanceof SnapshotError) throw error;
      throw new SnapshotError(`${what}: the saved framebuffer does not inflate to at most ${this.fb.length} bytes: ${(error as Error).message}`);
    }
    if (fb.length !== this.fb.length) throw new SnapshotError(`${what}: the saved framebuffer has ${fb.length} bytes, this device ${this.fb.length}`);
    // Checked on scratch copies first, so that bad DAC data cannot leave the VBE registers restored alone.
    const vbe = new VbeRegisterFile({ fbSize: this.fb.length });
    vbe.restoreState(data.vbe, what);
    new VgaDac(() => false, () => {}).restoreState(data.dac, what);
    this.vbe.restoreState(data.vbe, what);
    this.dac.restoreState(data.dac, what);
    this.fb.set(fb);
    this.dirty.markAll();
  }

  get palette(): Palette {
    return this.dac;
  }

  get scanout(): Scanout | undefined {
    return this.vbe.scanout;
  }

  capture(): RgbaFrame {
    return captureFrame(this.fb, this.vbe.scanout, this.dac);
  }

  subscribeDirty(): DirtySubscriber {
    return this.dirty.subscribe();
  }

  onModeChange(listener: (scanout: Scanout | undefined) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  key(keysym: number, down: boolean): void {
    if (this.onKey) this.onKey(keysym, down);
    else this.logger?.debug(`vesa: key 0x${keysym.toString(16)} ${down ? "down" : "up"} dropped (no keyboard connected)`);
  }
}
