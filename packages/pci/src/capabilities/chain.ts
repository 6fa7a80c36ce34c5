import { ConfigurationError, type PciCapability, type PciExtendedCapability } from "@vmm/core";
import type { ConfigSpace } from "../config/config-space.js";
import { EXTENDED_CAPABILITIES, FIRST_CAPABILITY, Reg, Status } from "../config/header.js";

/** The ID written over a hidden extended capability at 0x100, which cannot be unlinked (0 is the null ID). */
export const HIDDEN_EXTENDED_ID = 0x0000;

const align4 = (n: number) => (n + 3) & ~3;

/** A placed capability's bytes, header included: [start, end). */
interface Span {
  readonly start: number;
  readonly end: number;
}

/**
 * Places capabilities in config space and keeps both lists chained: standard ones from 0x40 (capability pointer
 * at 0x34, status bit 4), extended ones from 0x100 (a zero header terminates an empty list). The chain owns the
 * header bytes (ID, next pointer); each capability owns its body. A capability goes at a fixed offset when one is
 * given (a passthrough device's own layout: drivers use hard-coded offsets), else at the lowest dword-aligned
 * offset where it fits between the ones placed. The list runs in the order capabilities were added.
 */
export class CapabilityChain {
  private standard: number[] = [];
  private extended: number[] = [];
  /** Every placed capability, hidden ones included (their bytes stay where they are). */
  private standardSpans: Span[] = [];
  private extendedSpans: Span[] = [];

  constructor(
    private readonly owner: string,
    private readonly space: ConfigSpace,
    /** Whether the function is PCI Express now (default: its config space is 4 KiB). */
    private readonly isExpress: () => boolean = () => space.size >= 0x1000,
  ) {}

  /** Adds a standard capability (at `at`, a dword-aligned offset in 0x40-0xFF, when given) and returns its offset. */
  add(cap: PciCapability, at?: number): number {
    if (!Number.isInteger(cap.id) || cap.id < 0 || cap.id > 0xff) {
      throw new ConfigurationError(`${this.owner}: capability ID ${cap.id} is not a byte`);
    }
    checkMasks(this.owner, cap);
    const length = align4(2 + cap.body.length);
    const offset = this.place(this.standardSpans, FIRST_CAPABILITY, 0x100, length, at, `capability 0x${cap.id.toString(16)}`);
    const file = this.space.file;
    file.set(offset, 1, cap.id);
    file.set(offset + 1, 1, 0);
    this.space.place(offset + 2, cap);
    this.standard.push(offset);
    this.relinkStandard();
    return offset;
  }

  /**
   * Adds an extended capability (PCI Express functions only; at `at`, a dword-aligned offset in 0x100-0xFFF, when
   * given) and returns its offset.
   */
  addExtended(cap: PciExtendedCapability, at?: number): number {
    if (this.space.size < 0x1000 || !this.isExpress()) {
      throw new ConfigurationError(`${this.owner}: extended capabilities need a PCI Express function`);
    }
    if (!Number.isInteger(cap.id) || cap.id < 0 || cap.id > 0xffff || cap.version < 0 || cap.version > 0xf) {
      throw new ConfigurationError(`${this.owner}: bad extended capability ID ${cap.id} / version ${cap.version}`);
    }
    checkMasks(this.owner, cap);
    if (at !== undefined && at !== EXTENDED_CAPABILITIES && this.extendedSpans.length === 0) {
      throw new ConfigurationError(`${this.owner}: the first extended capability must sit at 0x100, where the list starts`);
    }
    const length = align4(4 + cap.body.length);
    const offset = this.place(this.extendedSpans, EXTENDED_CAPABILITIES, 0x1000, length, at, `extended capability 0x${cap.id.toString(16)}`);
    this.space.file.set(offset, 4, ((cap.version << 16) | cap.id) >>> 0);
    this.space.place(offset + 4, cap);
    this.extended.push(offset);
    this.relinkExtended();
    return offset;
  }

  /** Offsets of the visible standard capabilities, in chain order. */
  standardOffsets(): readonly number[] {
    return this.standard;
  }

  extendedOffsets(): readonly number[] {
    return this.extended;
  }

  /** Unlinks a standard capability by rewriting the previous next pointer (or the capability pointer). */
  hide(offset: number): void {
    const i = this.standard.indexOf(offset);
    if (i < 0) throw new ConfigurationError(`${this.owner}: no visible capability at 0x${offset.toString(16)}`);
    this.standard.splice(i, 1);
    this.relinkStandard();
  }

  /**
   * Hides an extended capability. One in the middle or at the end is unlinked; the head at 0x100 cannot move, so
   * its ID becomes the null ID and its version 0, keeping the next pointer so the rest of the list stays reachable.
   */
  hideExtended(offset: number): void {
    const i = this.extended.indexOf(offset);
    if (i < 0) throw new ConfigurationError(`${this.owner}: no visible extended capability at 0x${offset.toString(16)}`);
    if (offset === EXTENDED_CAPABILITIES) {
      const header = this.space.file.read(offset, 4);
      this.space.file.set(offset, 4, ((header & 0xfff0_0000) | HIDDEN_EXTENDED_ID) >>> 0);
      return;
    }
    this.extended.splice(i, 1);
    this.relinkExtended();
  }

  /** Claims `length` bytes at `at` (checked) or at the lowest free dword-aligned offset in [lo, hi). */
  private place(spans: Span[], lo: number, hi: number, length: number, at: number | undefined, what: string): number {
    const free = (start: number) => start + length <= hi && !spans.some((s) => start < s.end && s.start < start + length);
    let start: number;
    if (at !== undefined) {
      if (!Number.isInteger(at) || at % 4 !== 0 || at < lo || at + length > hi) {
        throw new ConfigurationError(
          `${this.owner}: ${what} cannot go at 0x${String(at.toString(16))}: it needs a dword-aligned offset with its ${length} bytes in 0x${lo.toString(16)}-0x${(hi - 1).toString(16)}`,
        );
      }
      const clash = spans.find((s) => at < s.end && s.start < at + length);
      if (clash) throw new ConfigurationError(`${this.owner}: ${what} at 0x${at.toString(16)} overlaps the capability at 0x${clash.start.toString(16)}`);
      start = at;
    } else {
      const candidates = [lo, ...spans.map((s) => s.end)].filter((c) => c >= lo).sort((a, b) => a - b);
      const found = candidates.find(free);
      if (found === undefined) throw new ConfigurationError(`${this.owner}: ${what} does not fit${hi === 0x100 ? " below 0x100" : ""}`);
      start = found;
    }
    spans.push({ start, end: start + length });
    return start;
  }

  private relinkStandard(): void {
    const file = this.space.file;
    const list = this.standard;
    file.set(Reg.CAPABILITIES_POINTER, 1, list[0] ?? 0);
    const status = file.read(Reg.STATUS, 2);
    file.set(Reg.STATUS, 2, list.length > 0 ? status | Status.CAPABILITIES_LIST : status & ~Status.CAPABILITIES_LIST);
    list.forEach((at, i) => file.set(at + 1, 1, list[i + 1] ?? 0));
  }

  private relinkExtended(): void {
    const file = this.space.file;
    this.extended.forEach((at, i) => {
      const header = file.read(at, 4) & 0x000f_ffff;
      file.set(at, 4, (header | ((this.extended[i + 1] ?? 0) << 20)) >>> 0);
    });
  }
}

function checkMasks(owner: string, cap: { body: Uint8Array; writable?: Uint8Array; writeOneToClear?: Uint8Array }): void {
  for (const m of [cap.writable, cap.writeOneToClear]) {
    if (m && m.length !== cap.body.length) {
      throw new ConfigurationError(`${owner}: a capability mask must be as long as its body`);
    }
  }
}
