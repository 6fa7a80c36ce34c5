import type { Scanout } from "./vbe/mode.js";

/** Pages written since a consumer last looked; `all` when nothing narrower is known (no dirty log, mode change). */
export interface DirtyPages {
  readonly all: boolean;
  /** One bit per 4 KiB page of the framebuffer, least significant bit first. */
  readonly pages: Uint8Array;
}

export const PAGE_SHIFT = 12;

/** One consumer's view of the dirty log: each take() returns what changed since its previous take(). */
export interface DirtySubscriber {
  take(): DirtyPages;
  close(): void;
}

/**
 * Fans the framebuffer's dirty-page log (read-and-clear, from the MemoryMapper) out to several consumers, each
 * of which needs "changed since I last looked". Without a log every take() reports `all`.
 */
export class DirtyLog {
  private readonly subscribers = new Set<{ all: boolean; pages: Uint8Array }>();
  private source: (() => Uint8Array) | undefined;

  constructor(private readonly fbSize: number) {}

  get bitmapBytes(): number {
    return Math.ceil((this.fbSize >> PAGE_SHIFT) / 8);
  }

  /** Sets (or clears) where dirty pages come from; consumers see everything as changed once. */
  setSource(source: (() => Uint8Array) | undefined): void {
    this.poll();
    this.source = source;
    this.markAll();
  }

  get tracking(): boolean {
    return this.source !== undefined;
  }

  markAll(): void {
    for (const s of this.subscribers) s.all = true;
  }

  /** Moves the source's pages into every consumer's pending set. */
  poll(): void {
    if (!this.source) return;
    const fresh = this.source();
    const n = Math.min(fresh.length, this.bitmapBytes);
    for (const s of this.subscribers) for (let i = 0; i < n; i++) s.pages[i]! |= fresh[i]!;
  }

  subscribe(): DirtySubscriber {
    const entry = { all: true, pages: new Uint8Array(this.bitmapBytes) };
    this.subscribers.add(entry);
    return {
      take: () => {
        this.poll();
        const out: DirtyPages = { all: entry.all || !this.source, pages: entry.pages };
        entry.all = false;
        entry.pages = new Uint8Array(this.bitmapBytes);
        return out;
      },
      close: () => void this.subscribers.delete(entry),
    };
  }
}

/** Which scanlines of the scanout touch a dirty page (all of them when `dirty.all`). */
export function dirtyRows(dirty: DirtyPages, scanout: Scanout): Uint8Array {
  const rows = new Uint8Array(scanout.height);
  if (dirty.all) return rows.fill(1);
  const lineBytes = scanout.width * ((scanout.bpp + 7) >> 3);
  for (let y = 0; y < scanout.height; y++) {
    const start = scanout.offset + y * scanout.stride;
    const first = start >> PAGE_SHIFT;
    const last = (start + lineBytes - 1) >> PAGE_SHIFT;
    for (let p = first; p <= last; p++) {
      if (dirty.pages[p >> 3]! & (1 << (p & 7))) {
        rows[y] = 1;
        break;
      }
    }
  }
  return rows;
}
