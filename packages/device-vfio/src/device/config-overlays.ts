// Windows laid over a passthrough function's config space (quirks): an access inside one reaches its handler with
// window-relative offsets; one that straddles a window's edge is split into bytes, each to its owner.
import { ConfigurationError, type Handle, type IoHandler, type SmallAccessSize } from "@vmm/core";
import type { BarOverlay } from "@vmm/pci";
import { hex } from "./bytes.js";

/** The function's own path for the bytes no window covers. */
export interface ConfigPath {
  read(offset: number, size: SmallAccessSize): number;
  write(offset: number, size: SmallAccessSize, value: number): void;
}

interface Window {
  readonly lo: number;
  readonly hi: number;
  readonly name: string;
  readonly handler: IoHandler;
}

export class ConfigOverlays {
  private readonly windows: Window[] = [];

  constructor(
    private readonly owner: string,
    private readonly size: number,
  ) {}

  get empty(): boolean {
    return this.windows.length === 0;
  }

  /** Lays a window; windows may not overlap. `remove()` takes it away. */
  add(overlay: BarOverlay): Handle {
    const { offset, size, name } = overlay;
    const what = `${this.owner}: overlay "${name}" on config space`;
    if (!Number.isInteger(offset) || !Number.isInteger(size) || offset < 0 || size < 1 || offset + size > this.size) {
      throw new ConfigurationError(`${what}: ${hex(offset)}+${hex(size)} is not inside config space (${hex(this.size)} bytes)`);
    }
    const clash = this.windows.find((w) => offset < w.hi && w.lo < offset + size);
    if (clash) throw new ConfigurationError(`${what}: overlaps "${clash.name}"`);
    const window: Window = { lo: offset, hi: offset + size, name, handler: overlay.handler };
    this.windows.push(window);
    return {
      remove: () => {
        const at = this.windows.indexOf(window);
        if (at >= 0) this.windows.splice(at, 1);
      },
    };
  }

  read(offset: number, size: SmallAccessSize, path: ConfigPath): number {
    const one = this.owner1(offset, size);
    if (one === null) return path.read(offset, size);
    if (one) return one.handler.read(offset - one.lo, size);
    let value = 0;
    for (let i = 0; i < size; i++) value += this.read(offset + i, 1, path) * 2 ** (8 * i);
    return value;
  }

  write(offset: number, size: SmallAccessSize, value: number, path: ConfigPath): void {
    const one = this.owner1(offset, size);
    if (one === null) return path.write(offset, size, value);
    if (one) return one.handler.write(offset - one.lo, size, value);
    for (let i = 0; i < size; i++) this.write(offset + i, 1, (value >>> (8 * i)) & 0xff, path);
  }

  /** The window holding all of [offset, offset+size); null when none touches it; undefined when it straddles. */
  private owner1(offset: number, size: number): Window | null | undefined {
    for (const w of this.windows) {
      if (offset >= w.lo && offset + size <= w.hi) return w;
      if (offset < w.hi && w.lo < offset + size) return undefined;
    }
    return null;
  }
}
