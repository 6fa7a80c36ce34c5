import { ConfigurationError, type PciCapability, type PciExtendedCapability } from "@vmm/core";
import type { ConfigSpace } from "../config/config-space.js";
import { EXTENDED_CAPABILITIES, FIRST_CAPABILITY, Reg, Status } from "../config/header.js";

/** The ID written over a hidden extended capability at 0x100, which cannot be unlinked (0 is the null ID). */
export const HIDDEN_EXTENDED_ID = 0x0000;

const align4 = (n: number) => (n + 3) & ~3;

/**
 * Places capabilities in config space and keeps both lists chained: standard ones from 0x40 (capability pointer
 * at 0x34, status bit 4), extended ones from 0x100 (a zero header terminates an empty list). The chain owns the
 * header bytes (ID, next pointer); each capability owns its body.
 */
export class CapabilityChain {
  private standard: number[] = [];
  private extended: number[] = [];
  private nextStandard = FIRST_CAPABILITY;
  private nextExtended = EXTENDED_CAPABILITIES;

  constructor(
    private readonly owner: string,
    private readonly space: ConfigSpace,
    /** Whether the function is PCI Express now (default: its config space is 4 KiB). */
    private readonly isExpress: () => boolean = () => space.size >= 0x1000,
  ) {}

  /** Adds a standard capability and returns its offset. */
  add(cap: PciCapability): number {
    if (!Number.isInteger(cap.id) || cap.id < 0 || cap.id > 0xff) {
      throw new ConfigurationError(`${this.owner}: capability ID ${cap.id} is not a byte`);
    }
    checkMasks(this.owner, cap);
    const at = this.nextStandard;
    const length = align4(2 + cap.body.length);
    if (at + length > 0x100) {
      throw new ConfigurationError(`${this.owner}: capability 0x${cap.id.toString(16)} does not fit below 0x100`);
    }
    this.nextStandard += length;
    const file = this.space.file;
    file.set(at, 1, cap.id);
    file.set(at + 1, 1, 0);
    this.space.place(at + 2, cap);
    this.standard.push(at);
    this.relinkStandard();
    return at;
  }

  /** Adds an extended capability (PCI Express functions only) and returns its offset. */
  addExtended(cap: PciExtendedCapability): number {
    if (this.space.size < 0x1000 || !this.isExpress()) {
      throw new ConfigurationError(`${this.owner}: extended capabilities need a PCI Express function`);
    }
    if (!Number.isInteger(cap.id) || cap.id < 0 || cap.id > 0xffff || cap.version < 0 || cap.version > 0xf) {
      throw new ConfigurationError(`${this.owner}: bad extended capability ID ${cap.id} / version ${cap.version}`);
    }
    checkMasks(this.owner, cap);
    const at = this.nextExtended;
    const length = align4(4 + cap.body.length);
    if (at + length > 0x1000) {
      throw new ConfigurationError(`${this.owner}: extended capability 0x${cap.id.toString(16)} does not fit`);
    }
    this.nextExtended += length;
    this.space.file.set(at, 4, ((cap.version << 16) | cap.id) >>> 0);
    this.space.place(at + 4, cap);
    this.extended.push(at);
    this.relinkExtended();
    return at;
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
