// The parts of a passthrough device's BARs that the guest reaches with no exit: page-aligned mmappable areas of a
// region, mapped into this process once (mapFd) and into the guest as memslots at the BAR's address while the
// window is decoded. Everything else in a BAR traps to the model's handler (the backend's read/write): sub-page
// BARs, regions without mmap, sparse-mmap holes, and the pages the VMM must see (the MSI-X table and PBA, quirk
// windows), which are cut out of an area even when the device offers to map them.
import type { Handle, Logger, MappedRegion, MemoryMapper, PciBarWindow } from "@vmm/core";
import { VfioRegionFlags, type VfioRegionInfo } from "../backend/backend.js";
import { hex, PAGE_SIZE } from "./bytes.js";
import type { DeviceBar } from "./device-config.js";

/** Maps `length` bytes of `fd` from `offset` into this process (host-io mapFd). */
export type MapFd = (fd: number, offset: number, length: number, options: { writable: boolean }) => Uint8Array;

/** A range of a BAR, BAR-relative: [offset, offset + size). */
export interface BarSpan {
  readonly offset: number;
  readonly size: number;
}

interface HostArea {
  readonly offset: number;
  readonly bytes: Uint8Array;
}

interface Active {
  readonly window: PciBarWindow;
  maps: MappedRegion[];
}

const pageDown = (n: number) => Math.floor(n / PAGE_SIZE) * PAGE_SIZE;
const pageUp = (n: number) => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;

/**
 * The page-aligned spans of a region that may be mapped: each mmap area clipped to the region and the BAR,
 * shrunk inward to whole pages. Empty for I/O BARs, sub-page BARs and regions without mmap.
 */
export function mappableAreas(bar: DeviceBar): BarSpan[] {
  const { region, descriptor } = bar;
  if (descriptor.kind === "io" || !region.mmap || (region.flags & VfioRegionFlags.MMAP) === 0) return [];
  if (descriptor.size < PAGE_SIZE || region.mmap.offset % PAGE_SIZE !== 0) return [];
  const limit = Math.min(region.size, descriptor.size);
  const out: BarSpan[] = [];
  for (const area of region.mmap.areas) {
    if (!Number.isSafeInteger(area.offset) || !Number.isSafeInteger(area.size) || area.offset < 0 || area.size <= 0) continue;
    const lo = pageUp(area.offset);
    const hi = pageDown(Math.min(area.offset + area.size, limit));
    if (hi > lo && !out.some((o) => lo < o.offset + o.size && o.offset < hi)) out.push({ offset: lo, size: hi - lo });
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/** `spans` without the pages that any of `holes` touches (holes rounded out to pages). */
export function subtractPages(spans: readonly BarSpan[], holes: readonly BarSpan[]): BarSpan[] {
  let out = [...spans];
  for (const hole of holes) {
    const lo = pageDown(hole.offset);
    const hi = pageUp(hole.offset + hole.size);
    out = out.flatMap((s) => {
      const end = s.offset + s.size;
      if (hi <= s.offset || lo >= end) return [s];
      const parts: BarSpan[] = [];
      if (lo > s.offset) parts.push({ offset: s.offset, size: lo - s.offset });
      if (hi < end) parts.push({ offset: hi, size: end - hi });
      return parts;
    });
  }
  return out;
}

/**
 * Keeps the guest's memslots equal to the mappable parts of the decoded BAR windows. Memslots are always removed
 * before a host mapping could go away (host mappings live until `close`, and a host view is only dropped after
 * every memslot over it is removed).
 */
export class BarMappings {
  private readonly hostAreas = new Map<number, HostArea[] | "unmappable">();
  private readonly active = new Map<number, Active>();
  private readonly holes = new Map<number, BarSpan[]>();
  private suspended = false;
  private warned = new Set<string>();

  constructor(
    private readonly name: string,
    private readonly bars: readonly DeviceBar[],
    private readonly mapper: MemoryMapper,
    private readonly mapFd: MapFd,
    private readonly logger: Logger,
    private readonly enabled = true,
  ) {}

  /** Keeps the pages of [offset, offset + size) of BAR `index` trapped from now on; `remove()` gives them back. */
  exclude(index: number, offset: number, size: number): Handle {
    const list = this.holes.get(index) ?? [];
    const hole: BarSpan = { offset, size };
    list.push(hole);
    this.holes.set(index, list);
    this.remap(index);
    return {
      remove: () => {
        const at = list.indexOf(hole);
        if (at < 0) return;
        list.splice(at, 1);
        this.remap(index);
      },
    };
  }

  /** The BAR-relative spans of BAR `index` that are memslots while it is decoded. */
  mappedSpans(index: number): BarSpan[] {
    const bar = this.bars.find((b) => b.descriptor.index === index);
    if (!bar || !this.enabled) return [];
    return subtractPages(mappableAreas(bar), this.holes.get(index) ?? []);
  }

  /** The memslots of BAR `index` now (for tests and traces). */
  memslots(index: number): readonly MappedRegion[] {
    return this.active.get(index)?.maps ?? [];
  }

  activate(window: PciBarWindow): void {
    if (window.kind === "io") return;
    this.deactivate(window.index);
    const active: Active = { window, maps: [] };
    this.active.set(window.index, active);
    if (!this.suspended) this.map(active);
  }

  deactivate(index: number): void {
    const active = this.active.get(index);
    if (!active) return;
    this.unmap(active);
    this.active.delete(index);
  }

  /**
   * Removes every memslot so that all BAR accesses trap (INTx without irqfd: the guest's next touch of the device
   * is the end of its interrupt handler); `resume` maps them again.
   */
  suspend(): void {
    if (this.suspended) return;
    this.suspended = true;
    for (const a of this.active.values()) this.unmap(a);
  }

  resume(): void {
    if (!this.suspended) return;
    this.suspended = false;
    for (const a of this.active.values()) this.map(a);
  }

  /** Removes every memslot, then drops the host mappings. */
  close(): void {
    for (const a of this.active.values()) this.unmap(a);
    this.active.clear();
    this.hostAreas.clear();
  }

  private remap(index: number): void {
    const active = this.active.get(index);
    if (!active || this.suspended) return;
    this.unmap(active);
    this.map(active);
  }

  private map(active: Active): void {
    const index = active.window.index;
    const bar = this.bars.find((b) => b.descriptor.index === index);
    if (!bar) return;
    const host = this.host(bar);
    if (host === "unmappable") return;
    const readonly = (bar.region.flags & VfioRegionFlags.WRITE) === 0;
    for (const span of this.mappedSpans(index)) {
      const area = host.find((h) => span.offset >= h.offset && span.offset + span.size <= h.offset + h.bytes.length);
      if (!area) continue;
      const bytes = area.bytes.subarray(span.offset - area.offset, span.offset - area.offset + span.size);
      const gpa = active.window.address + span.offset;
      try {
        active.maps.push(this.mapper.map(gpa, bytes, { readonly }));
      } catch (e) {
        this.warnOnce(`memslot BAR${index}`, `BAR${index} [${hex(span.offset)}, +${hex(span.size)}) at ${hex(gpa)} cannot be mapped into the guest, its accesses trap (${(e as Error).message})`);
      }
    }
  }

  private unmap(active: Active): void {
    for (const m of active.maps.splice(0)) m.remove();
  }

  /** The host mappings of a BAR's mmap areas, made on first use; "unmappable" when mapFd refused. */
  private host(bar: DeviceBar): HostArea[] | "unmappable" {
    const index = bar.descriptor.index;
    const known = this.hostAreas.get(index);
    if (known) return known;
    const mmap = bar.region.mmap as NonNullable<VfioRegionInfo["mmap"]>;
    const writable = (bar.region.flags & VfioRegionFlags.WRITE) !== 0;
    let areas: HostArea[] | "unmappable";
    try {
      areas = mappableAreas(bar).map((a) => ({ offset: a.offset, bytes: this.mapFd(mmap.fd, mmap.offset + a.offset, a.size, { writable }) }));
    } catch (e) {
      this.warnOnce(`mapFd BAR${index}`, `BAR${index} cannot be mapped from the device (${(e as Error).message}); its accesses trap`);
      areas = "unmappable";
    }
    this.hostAreas.set(index, areas);
    return areas;
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.logger.warn(`${this.name}: ${message}`);
  }
}
