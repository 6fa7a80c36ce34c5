import type { AddressSpace, MappedRegion, MemoryMapper, Registration } from "@vmm/core";

/** The legacy BIOS area the host bridge's PAM registers shadow. */
export const SHADOW = { base: 0xc0000, end: 0x100000 } as const;

/** One PAM segment's decoding (see @vmm/pci's PamSegment). */
export interface ShadowSegment {
  readonly start: number;
  readonly size: number;
  readonly readRam: boolean;
  readonly writeRam: boolean;
}

type Kind = "ram" | "ram-ro" | "rom" | "none";

/**
 * 0xC0000-0xFFFFF as the PAM registers decode it: each segment's reads come from RAM or from the ROM side (the
 * firmware's legacy alias at the top of this area, or nothing: all-ones), and its writes go to RAM or are dropped.
 * Segments read from RAM or from the ROM alias are KVM memslots (read-only unless RAM takes the writes), merged
 * where neighbours agree; what a memslot cannot serve (a write to a read-only one, any access to a segment without
 * one) exits to a handler that follows the same rules.
 */
export class ShadowRam {
  private segments: ShadowSegment[] = [{ start: SHADOW.base, size: SHADOW.end - SHADOW.base, readRam: true, writeRam: true }];
  private regions: MappedRegion[] = [];
  private readonly registration: Registration;
  /** How many times the mapping changed (statistics, tests). */
  remaps = 0;

  /**
   * `ram` is the RAM behind 0xC0000-0xFFFFF (256 KiB, page-aligned); `rom` the firmware's legacy alias, which
   * ends at 1 MiB.
   */
  constructor(
    private readonly ram: Uint8Array,
    private readonly rom: Uint8Array,
    private readonly mapper: MemoryMapper,
    mmio: AddressSpace,
  ) {
    this.registration = mmio.register(SHADOW.base, SHADOW.end - SHADOW.base, "shadow ram (PAM)", {
      read: (offset, size) => {
        let v = 0;
        for (let i = 0; i < size; i++) v |= this.readByte(SHADOW.base + offset + i) << (8 * i);
        return v >>> 0;
      },
      write: (offset, size, value) => {
        for (let i = 0; i < size; i++) this.writeByte(SHADOW.base + offset + i, (value >>> (8 * i)) & 0xff);
      },
    });
  }

  /** Applies the PAM decoding of every segment (the host bridge's onPamChange). */
  apply(segments: readonly ShadowSegment[]): void {
    this.segments = [...segments].sort((a, b) => a.start - b.start);
    for (const r of this.regions) r.remove();
    this.regions = [];
    this.remaps++;
    let run: { start: number; end: number; kind: Kind } | undefined;
    const flush = () => {
      if (run && run.kind !== "none") this.regions.push(this.mapRun(run.start, run.end, run.kind));
      run = undefined;
    };
    for (const s of this.segments) {
      const kind = this.kindOf(s);
      if (run && run.kind === kind && run.end === s.start) run.end += s.size;
      else {
        flush();
        run = { start: s.start, end: s.start + s.size, kind };
      }
    }
    flush();
  }

  close(): void {
    for (const r of this.regions) r.remove();
    this.regions = [];
    this.registration.unregister();
  }

  private get romBase(): number {
    return SHADOW.end - this.rom.length;
  }

  private kindOf(s: ShadowSegment): Kind {
    if (s.readRam) return s.writeRam ? "ram" : "ram-ro";
    return s.start >= this.romBase ? "rom" : "none";
  }

  private mapRun(start: number, end: number, kind: Kind): MappedRegion {
    if (kind === "rom") return this.mapper.map(start, this.rom.subarray(start - this.romBase, end - this.romBase), { readonly: true });
    return this.mapper.map(start, this.ram.subarray(start - SHADOW.base, end - SHADOW.base), { readonly: kind === "ram-ro" });
  }

  private segmentAt(address: number): ShadowSegment | undefined {
    return this.segments.find((s) => address >= s.start && address < s.start + s.size);
  }

  private readByte(address: number): number {
    const s = this.segmentAt(address);
    if (s?.readRam) return this.ram[address - SHADOW.base]!;
    return address >= this.romBase ? this.rom[address - this.romBase]! : 0xff;
  }

  private writeByte(address: number, value: number): void {
    if (this.segmentAt(address)?.writeRam) this.ram[address - SHADOW.base] = value;
  }
}
