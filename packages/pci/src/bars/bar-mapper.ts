import type { AddressSpace, BarKind, IoHandler, Logger, PciBarWindow, PciDevice, Registration } from "@vmm/core";
import { Reg } from "../config/header.js";
import { barOffset, ROM_INDEX } from "./bar-layout.js";
import { isDecodable, readBarStates, type BarState } from "./bar-decoder.js";

/** A function as the mapper knows it. */
export interface MappedFunction {
  readonly device: PciDevice;
  /** "00:03.0 virtio-blk", used in owners and messages. */
  readonly label: string;
  /** The handler to register for a BAR window (undefined: the device maps it itself in barActivated). */
  handler(index: number): IoHandler | undefined;
}

/** A decoded window that another, more recently moved window covers (even partly). */
export interface BarConflict {
  readonly shadowed: { readonly label: string; readonly index: number; readonly address: number; readonly size: number };
  readonly by: { readonly label: string; readonly index: number; readonly address: number; readonly size: number };
}

interface Slot {
  readonly fn: MappedFunction;
  readonly index: number;
  readonly kind: BarKind;
  readonly size: number;
  readonly space: "io" | "mem";
  /** Config dwords holding this BAR, for rollback. */
  readonly registers: readonly number[];
  /** The address the window follows. For 64-bit BARs it changes only once both halves were written. */
  committed: number;
  /** `committed` before the last write, for rollback. */
  previous: number;
  /** 64-bit BARs: halves written (bit 0 low, bit 1 high) since the register value left `committed`. */
  touched: number;
  enabled: boolean;
  /** Where the window should be decoded, if anywhere. */
  desired: number | undefined;
  /** When `desired` last changed; the most recent move wins an overlap (within one write: the higher index). */
  seq: number;
  /** `seq` before its last change, so a rolled-back move keeps its old rank. */
  previousSeq: number;
  active: { address: number; registration: Registration | undefined } | undefined;
  /** Why an activation failed (a non-PCI owner holds the range); warned once. */
  blocked: string | undefined;
}

type Snapshot = Map<number, number>;

const overlaps = (a: Slot, b: Slot) =>
  a.space === b.space && a.desired! < b.desired! + b.size && b.desired! < a.desired! + a.size;

const activeOverlaps = (o: Slot, s: Slot) =>
  o.space === s.space && o.active!.address < s.desired! + s.size && s.desired! < o.active!.address + o.size;

/** True when a config write can change BAR decoding: command register, BARs, ROM BAR. */
export function touchesBarDecoding(offset: number, size: number): boolean {
  const end = offset + size;
  const hit = (lo: number, hi: number) => offset < hi && end > lo;
  return hit(Reg.COMMAND, Reg.COMMAND + 2) || hit(Reg.BAR0, Reg.CARDBUS_CIS) || hit(Reg.ROM_BAR, Reg.ROM_BAR + 4);
}

/**
 * Keeps the address spaces equal to what config space decodes. Around each config write it compares every BAR's
 * decode-gated window before and after, deactivates and activates windows (device notification plus handler
 * registration), and resolves overlaps between functions: the most recently moved window is decoded, the ones
 * it covers are shadowed until the overlap ends. A move that collides with a non-PCI owner is rolled back.
 */
export class BarMapper {
  private readonly slots: Slot[] = [];
  private seq = 0;
  private shadowed: BarConflict[] = [];

  constructor(
    private readonly spaces: { readonly io: AddressSpace; readonly mem: AddressSpace },
    private readonly logger: Logger | undefined,
    /**
     * Whether the path from the host bridge forwards a window to the function (every upstream bridge's command
     * bits and windows); a window that is not forwarded is not decoded. Default: always.
     */
    private readonly forwarded: (fn: MappedFunction, space: "io" | "mem", address: number, size: number) => boolean = () => true,
  ) {}

  /** Starts tracking a function's BARs (call before programming them). */
  add(fn: MappedFunction): void {
    for (const st of readBarStates(fn.device)) {
      this.slots.push({
        fn,
        index: st.index,
        kind: st.kind,
        size: st.size,
        space: st.kind === "io" ? "io" : "mem",
        registers: st.kind === "mem64" ? [barOffset(st.index), barOffset(st.index) + 4] : [barOffset(st.index)],
        committed: st.address,
        previous: st.address,
        touched: 0,
        enabled: false,
        desired: undefined,
        seq: 0,
        previousSeq: 0,
        active: undefined,
        blocked: undefined,
      });
    }
    this.sync(fn);
  }

  /** Stops decoding a function's windows and forgets it; windows it shadowed come back. */
  remove(fn: MappedFunction): void {
    for (const s of this.slotsOf(fn)) {
      s.desired = undefined;
      if (s.active) this.deactivate(s);
    }
    for (let i = this.slots.length - 1; i >= 0; i--) if (this.slots[i]!.fn === fn) this.slots.splice(i, 1);
    this.reconcile();
  }

  /** Captures the BAR registers before a write that may change decoding (for rollback). */
  before(fn: MappedFunction): Snapshot {
    const snap: Snapshot = new Map();
    for (const s of this.slotsOf(fn)) for (const r of s.registers) snap.set(r, fn.device.configRead(r, 4) >>> 0);
    return snap;
  }

  /** Applies the effect of a config write at [offset, offset+size) that `before` captured. */
  after(fn: MappedFunction, offset: number, size: number, snapshot: Snapshot): void {
    for (const s of this.slotsOf(fn)) {
      if (s.kind !== "mem64") continue;
      const [low, high] = s.registers as [number, number];
      if (offset < low + 4 && offset + size > low) s.touched |= 1;
      if (offset < high + 4 && offset + size > high) s.touched |= 2;
    }
    const changed = this.recompute(fn);
    if (changed.length === 0) return;
    const failed = this.reconcile().filter((s) => changed.includes(s));
    if (failed.length > 0) this.rollback(fn, failed, snapshot);
  }

  /** Recomputes a function's windows from config space (after attach, reset, or a change the device made). */
  sync(fn: MappedFunction): void {
    for (const s of this.slotsOf(fn)) if (s.kind === "mem64") s.touched = 3;
    if (this.recompute(fn).length > 0) this.reconcile();
  }

  /**
   * Recomputes the windows of functions whose upstream forwarding changed (a bridge's window, command bits or
   * bridge control moved): windows leave or rejoin the address spaces; no rollback (the BARs did not change).
   */
  recheck(fns: readonly MappedFunction[]): void {
    const set = new Set(fns);
    let changed = false;
    for (const fn of set) if (this.recompute(fn).length > 0) changed = true;
    if (changed) this.reconcile();
  }

  /** The windows of a function that are decoded now. */
  activeWindows(fn: MappedFunction): PciBarWindow[] {
    return this.slotsOf(fn)
      .filter((s) => s.active)
      .map((s) => ({ index: s.index, kind: s.kind, address: s.active!.address, size: s.size }));
  }

  /** The windows config space asks for (decode-gated), whether or not they are shadowed. */
  desiredWindows(fn: MappedFunction): PciBarWindow[] {
    return this.slotsOf(fn)
      .filter((s) => s.desired !== undefined)
      .map((s) => ({ index: s.index, kind: s.kind, address: s.desired!, size: s.size }));
  }

  /** Windows currently shadowed by a more recently moved one. */
  conflicts(): readonly BarConflict[] {
    return this.shadowed;
  }

  private slotsOf(fn: MappedFunction): Slot[] {
    return this.slots.filter((s) => s.fn === fn);
  }

  /** Updates committed addresses and desired windows; returns the slots whose desired window changed. */
  private recompute(fn: MappedFunction): Slot[] {
    const states = new Map<number, BarState>(readBarStates(fn.device).map((st) => [st.index, st]));
    const changed: Slot[] = [];
    for (const s of this.slotsOf(fn)) {
      const st = states.get(s.index);
      if (!st) continue;
      s.previous = s.committed;
      if (s.kind !== "mem64") s.committed = st.address;
      else if (st.address === s.committed) s.touched = 0;
      else if (s.touched === 3 || (st.enabled && !s.enabled)) {
        // Both halves landed, or the guest turned decoding on: it is done programming.
        s.committed = st.address;
        s.touched = 0;
      }
      s.enabled = st.enabled;
      const desired =
        st.enabled && isDecodable(s.kind, s.committed, s.size) && this.forwarded(fn, s.space, s.committed, s.size) ? s.committed : undefined;
      if (desired !== s.desired) {
        s.desired = desired;
        s.previousSeq = s.seq;
        s.seq = ++this.seq;
        s.blocked = undefined;
        changed.push(s);
      }
    }
    return changed;
  }

  /**
   * Makes the address spaces match the desired windows, most recent first: a window is decoded unless it overlaps
   * a window already decoded in this pass. One that cannot be registered shadows nothing. Returns those.
   */
  private reconcile(): Slot[] {
    const wanted = this.slots.filter((s) => s.desired !== undefined).sort((a, b) => b.seq - a.seq);
    const winners: Slot[] = [];
    const shadowed: BarConflict[] = [];
    const failed: Slot[] = [];
    for (const s of wanted) {
      const by = winners.find((w) => overlaps(w, s));
      if (by) {
        shadowed.push({ shadowed: describe(s), by: describe(by) });
        continue;
      }
      if (s.active && s.active.address !== s.desired) this.deactivate(s);
      if (!s.active) {
        // Whatever still sits in the range is older (or about to move): it yields.
        for (const o of this.slots) if (o !== s && o.active && activeOverlaps(o, s)) this.deactivate(o);
        if (!this.activate(s)) {
          failed.push(s);
          continue;
        }
      }
      winners.push(s);
    }
    const win = new Set(winners);
    for (const s of this.slots) if (s.active && !win.has(s)) this.deactivate(s);
    for (const c of shadowed) {
      const known = this.shadowed.some(
        (o) => o.shadowed.label === c.shadowed.label && o.shadowed.index === c.shadowed.index && o.shadowed.address === c.shadowed.address,
      );
      if (!known) this.logger?.debug(`pci: ${name(c.shadowed)} is shadowed by ${name(c.by)} while they overlap`);
    }
    this.shadowed = shadowed;
    return failed;
  }

  private activate(s: Slot): boolean {
    const address = s.desired!;
    const handler = s.fn.handler(s.index);
    let registration: Registration | undefined;
    if (handler) {
      const space = s.space === "io" ? this.spaces.io : this.spaces.mem;
      try {
        registration = space.register(address, s.size, `${s.fn.label} ${barName(s.index)}`, handler);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        if (s.blocked !== reason) this.logger?.debug(`pci: ${s.fn.label} ${barName(s.index)} not decoded: ${reason}`);
        s.blocked = reason;
        return false;
      }
    }
    s.blocked = undefined;
    s.active = { address, registration };
    this.notify(s, "barActivated", address);
    return true;
  }

  private deactivate(s: Slot): void {
    const active = s.active!;
    this.notify(s, "barDeactivated", active.address);
    active.registration?.unregister();
    s.active = undefined;
  }

  private notify(s: Slot, what: "barActivated" | "barDeactivated", address: number): void {
    try {
      s.fn.device[what]?.({ index: s.index, kind: s.kind, address, size: s.size });
    } catch (error) {
      this.logger?.error(`pci: ${s.fn.label} ${what} threw: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /**
   * Puts the BAR registers of failed moves back to their values before the write (a 64-bit BAR: both halves to
   * the address it decoded before), and maps those again.
   */
  private rollback(fn: MappedFunction, failed: Slot[], snapshot: Snapshot): void {
    const ranks = new Map(failed.map((s) => [s, s.previousSeq]));
    for (const s of failed) {
      const wanted = s.desired!;
      if (s.kind === "mem64") {
        const [low, high] = s.registers as [number, number];
        fn.device.configWrite(low, 4, s.previous % 2 ** 32);
        fn.device.configWrite(high, 4, Math.floor(s.previous / 2 ** 32));
      } else {
        const old = snapshot.get(s.registers[0]!);
        if (old !== undefined) fn.device.configWrite(s.registers[0]!, 4, old);
      }
      s.touched = 3;
      this.logger?.warn(
        `pci: ${fn.label} ${barName(s.index)} cannot be decoded at 0x${wanted.toString(16)} (${s.blocked}); ` +
          `the BAR keeps its previous value`,
      );
    }
    if (this.recompute(fn).length === 0) return;
    // Back where it was, with the rank it had: a failed move must not win overlaps it did not win before.
    for (const [s, rank] of ranks) if (s.desired !== undefined) s.seq = rank;
    this.reconcile();
  }
}

function barName(index: number): string {
  return index === ROM_INDEX ? "ROM" : `BAR${index}`;
}

function describe(s: Slot): BarConflict["shadowed"] {
  return { label: s.fn.label, index: s.index, address: s.desired!, size: s.size };
}

function name(w: BarConflict["shadowed"]): string {
  return `${w.label} ${barName(w.index)} [0x${w.address.toString(16)}, +0x${w.size.toString(16)})`;
}
