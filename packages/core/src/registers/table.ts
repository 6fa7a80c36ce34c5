import type { IoHandler, SmallAccessSize } from "../address-space.js";
import { type RegisterWidth, toUnsigned, widthMask } from "./bits.js";

/**
 * How a register answers the guest:
 * - `rw`: reads and writes (the default for a register with a `field` or a `write`);
 * - `ro`: writes are refused (the default for a register with neither);
 * - `wo`: reads return 0;
 * - `w1c`: write-1-to-clear: each 1 bit written (within `mask`) clears that bit of `field`;
 * - `reserved`: reads 0 and silently ignores writes.
 */
export type RegisterAccess = "rw" | "ro" | "wo" | "w1c" | "reserved";

/** What a register's `write` returns: nothing or true when taken, false or a reason when refused. */
export type RegisterWriteResult = void | boolean | string;

/** Keys of `S` whose values are numbers: the fields a register can be backed by. */
export type NumericField<S> = { [K in keyof S]-?: S[K] extends number ? K : never }[keyof S];

/** One register of a table. Reads and writes it sees are always unsigned numbers of its own width. */
export interface RegisterSpec<S> {
  readonly name: string;
  /** Byte offset in the table (for `decode: "port"`, the port's offset). */
  readonly offset: number;
  readonly width: RegisterWidth;
  readonly access?: RegisterAccess;
  /** A numeric field of the state that backs the register: reads return it, writes store it (see `mask`). */
  readonly field?: NumericField<S>;
  /** Bits a write may change (`rw`) or clear (`w1c`) in `field`; the others keep their value. Default: all. */
  readonly mask?: number;
  /** Computes the value read (instead of `field`). A register with neither reads 0. */
  readonly read?: (state: S) => number;
  /** Takes a write (instead of storing into `field`); false or a reason string refuses it. */
  readonly write?: (state: S, value: number) => RegisterWriteResult;
  /** Overrides the table's `narrowWrite` for this register. */
  readonly narrowWrite?: NarrowWritePolicy;
}

/**
 * A write narrower than the register (or covering part of it): `merge` reads the register and replaces the bytes
 * written (read-modify-write; a `w1c` register merges zeros, which clear nothing), `zero-extend` writes the other
 * bytes as 0, `refuse` drops it.
 */
export type NarrowWritePolicy = "merge" | "zero-extend" | "refuse";

/** An access the table did not serve, as `onRefused` sees it. */
export interface RegisterRefusal {
  readonly write: boolean;
  readonly offset: number;
  readonly width: RegisterWidth;
  /** The value written (unsigned, of the access width). */
  readonly value?: number;
  /** The register addressed, when there is one. */
  readonly register?: string;
  readonly reason: string;
}

export interface RegisterTableOptions<S> {
  /** Bytes the table decodes; accesses reaching past it find no register there. Default: the end of the last register. */
  readonly size?: number;
  /**
   * How an offset finds its register:
   * - `lanes` (default), as on a memory bus: every byte of the table belongs to at most one register, and an access
   *   covers the bytes `offset..offset+width-1`;
   * - `port`, as on I/O ports: an access goes to the register that starts at its offset, whatever its width (a
   *   16-bit register at port 1 next to one at port 0 is fine). A read wider than the register returns it
   *   zero-extended; a write wider than the register is cut to it.
   */
  readonly decode?: "lanes" | "port";
  /**
   * (`lanes`) An access that covers more than one register, or a register and bytes no register serves: `split`
   * (default) reads each register once and assembles the bytes, low register first, and writes each register its
   * bytes (partly covered ones by `narrowWrite`); `refuse` drops it.
   */
  readonly spanning?: "split" | "refuse";
  /** A read of part of a register: `extract` (default) returns those bytes, `refuse` drops it. */
  readonly narrowRead?: "extract" | "refuse";
  /** A write of part of a register (default `merge`); a register may override it. */
  readonly narrowWrite?: NarrowWritePolicy;
  /** What each byte no register serves reads as, and what a refused read returns in every byte: 0 (default) or 0xff. */
  readonly fill?: 0 | 0xff;
  /**
   * Told of every access not served: bytes no register serves (unless some register in the access is served),
   * writes to read-only registers, accesses the policies refuse, and writes a register's `write` refused.
   */
  readonly onRefused?: (state: S, refusal: RegisterRefusal) => void;
}

/** A register as the table keeps it: the spec with its access resolved. */
interface Slot<S> {
  readonly spec: RegisterSpec<S>;
  readonly access: RegisterAccess;
  readonly mask: number;
  readonly narrowWrite: NarrowWritePolicy;
}

type Fields = Record<PropertyKey, number>;

/**
 * A declarative register file: a table of named registers (offset, width, a backing field or read/write handlers,
 * access rules) and the policies for every access that is not exactly one register (narrower, unaligned, spanning,
 * or hitting no register). The table is stateless: one table serves any number of devices, each access naming the
 * state it acts on. Every value read is unsigned and no wider than the access; every value a register is given is
 * unsigned and no wider than the register.
 */
export class RegisterTable<S> {
  readonly size: number;
  private readonly decode: "lanes" | "port";
  private readonly spanning: "split" | "refuse";
  private readonly narrowRead: "extract" | "refuse";
  private readonly fill: number;
  private readonly onRefused: ((state: S, refusal: RegisterRefusal) => void) | undefined;
  /** `lanes`: the register serving each byte; `port`: the register starting at each offset. */
  private readonly slots: (Slot<S> | undefined)[];
  private readonly byName = new Map<string, Slot<S>>();

  constructor(
    readonly registers: readonly RegisterSpec<S>[],
    options: RegisterTableOptions<S> = {},
  ) {
    this.size = options.size ?? Math.max(0, ...registers.map((r) => r.offset + r.width));
    this.decode = options.decode ?? "lanes";
    this.spanning = options.spanning ?? "split";
    this.narrowRead = options.narrowRead ?? "extract";
    this.fill = options.fill ?? 0;
    this.onRefused = options.onRefused;
    this.slots = new Array<Slot<S> | undefined>(this.size).fill(undefined);
    for (const spec of registers) {
      const slot = resolve(spec, options.narrowWrite ?? "merge");
      const end = this.decode === "lanes" ? spec.offset + spec.width : spec.offset + 1;
      if (!Number.isInteger(spec.offset) || spec.offset < 0 || end > this.size) {
        throw new RangeError(`register ${spec.name} at 0x${spec.offset.toString(16)} lies outside the table (0x${this.size.toString(16)} bytes)`);
      }
      if (this.byName.has(spec.name)) throw new RangeError(`register ${spec.name} is declared twice`);
      for (let at = spec.offset; at < end; at++) {
        const other = this.slots[at];
        if (other) throw new RangeError(`register ${spec.name} overlaps ${other.spec.name}`);
        this.slots[at] = slot;
      }
      this.byName.set(spec.name, slot);
    }
  }

  /** Reads `width` bytes at `offset` for `state`: unsigned, no wider than the access. */
  read(state: S, offset: number, width: RegisterWidth): number {
    const slot = this.slots[offset];
    if (this.decode === "port") {
      if (!slot) return this.refuseRead(state, offset, width, undefined, "no register there");
      if (width < slot.spec.width && this.narrowRead === "refuse") {
        return this.refuseRead(state, offset, width, slot, `${width}-byte read of a ${slot.spec.width}-byte register`);
      }
      return toUnsigned(this.readSlot(state, slot), width);
    }
    if (slot && offset + width <= slot.spec.offset + slot.spec.width) {
      if (slot.spec.offset === offset && slot.spec.width === width) return this.readSlot(state, slot);
      if (this.narrowRead === "refuse") return this.refuseRead(state, offset, width, slot, `${width}-byte read of part of a ${slot.spec.width}-byte register`);
      return toUnsigned(this.readSlot(state, slot) >>> (8 * (offset - slot.spec.offset)), width);
    }
    const touched = this.touched(offset, width);
    if (touched.length === 0) return this.refuseRead(state, offset, width, undefined, "no register there");
    if (this.spanning === "refuse") return this.refuseRead(state, offset, width, touched[0], "access spans registers");
    const values = new Map(touched.map((s) => [s, this.readSlot(state, s)]));
    let value = 0;
    for (let i = width - 1; i >= 0; i--) {
      const s = this.slots[offset + i];
      const byte = s ? (values.get(s)! >>> (8 * (offset + i - s.spec.offset))) & 0xff : this.fill;
      value = (value << 8) | byte;
    }
    return value >>> 0;
  }

  /** Writes the low `width` bytes of `value` at `offset` for `state`. */
  write(state: S, offset: number, width: RegisterWidth, value: number): void {
    const v = toUnsigned(value, width);
    const slot = this.slots[offset];
    if (this.decode === "port") {
      if (!slot) return this.refuseWrite(state, offset, width, v, undefined, "no register there");
      if (width >= slot.spec.width) return this.writeSlot(state, slot, toUnsigned(v, slot.spec.width), offset, width);
      return this.writePart(state, slot, 0, width, v, offset);
    }
    if (slot && offset + width <= slot.spec.offset + slot.spec.width) {
      if (slot.spec.offset === offset && slot.spec.width === width) return this.writeSlot(state, slot, v, offset, width);
      return this.writePart(state, slot, offset - slot.spec.offset, width, v, offset);
    }
    const touched = this.touched(offset, width);
    if (touched.length === 0) return this.refuseWrite(state, offset, width, v, undefined, "no register there");
    if (this.spanning === "refuse") return this.refuseWrite(state, offset, width, v, touched[0], "access spans registers");
    for (const s of touched) {
      const from = Math.max(offset, s.spec.offset);
      const to = Math.min(offset + width, s.spec.offset + s.spec.width);
      const bytes = toUnsigned(v >>> (8 * (from - offset)), (to - from) as RegisterWidth);
      if (to - from === s.spec.width) this.writeSlot(state, s, bytes, offset, width);
      else this.writePart(state, s, from - s.spec.offset, (to - from) as RegisterWidth, bytes, offset);
    }
  }

  /** An IoHandler serving this table for one state (offsets relative to the range it is registered at). */
  handler(state: S): IoHandler {
    return {
      read: (offset: number, size: SmallAccessSize) => this.read(state, offset, size),
      write: (offset: number, size: SmallAccessSize, value: number) => this.write(state, offset, size, value),
    };
  }

  /** Reads the register called `name` whole, as the guest would (for tests and diagnostics). */
  peek(state: S, name: string): number {
    const slot = this.byName.get(name);
    if (!slot) throw new RangeError(`no register ${name}`);
    return this.readSlot(state, slot);
  }

  /** The registers an access covers, lowest first, each once. */
  private touched(offset: number, width: number): Slot<S>[] {
    const out: Slot<S>[] = [];
    for (let i = 0; i < width; i++) {
      const s = this.slots[offset + i];
      if (s && s !== out[out.length - 1]) out.push(s);
    }
    return out;
  }

  private readSlot(state: S, slot: Slot<S>): number {
    const { spec, access } = slot;
    if (access === "wo" || access === "reserved") return 0;
    const raw = spec.read ? spec.read(state) : spec.field !== undefined ? (state as unknown as Fields)[spec.field] : 0;
    return toUnsigned(raw ?? 0, spec.width);
  }

  /** Writes `bytes` (`width` bytes) into `slot` at byte `at` of the register, by its narrow-write policy. */
  private writePart(state: S, slot: Slot<S>, at: number, width: RegisterWidth, bytes: number, offset: number): void {
    const policy = slot.narrowWrite;
    if (policy === "refuse") {
      return this.refuseWrite(state, offset, width, bytes, slot, `${width}-byte write to part of a ${slot.spec.width}-byte register`);
    }
    const lanes = (widthMask(width) << (8 * at)) >>> 0;
    const current = policy === "merge" && slot.access !== "w1c" ? this.readSlot(state, slot) : 0;
    this.writeSlot(state, slot, ((current & ~lanes) | ((bytes << (8 * at)) & lanes)) >>> 0, offset, width);
  }

  private writeSlot(state: S, slot: Slot<S>, value: number, offset: number, width: RegisterWidth): void {
    const { spec, access, mask } = slot;
    if (access === "reserved") return;
    if (access === "ro") return this.refuseWrite(state, offset, width, value, slot, `${spec.name} is read-only`);
    if (spec.write) {
      const result = spec.write(state, value);
      if (result === false || typeof result === "string") {
        this.refuseWrite(state, offset, width, value, slot, typeof result === "string" ? result : `${spec.name} refused 0x${value.toString(16)}`);
      }
      return;
    }
    const fields = state as unknown as Fields;
    const key = spec.field!;
    const old = fields[key]!;
    fields[key] = access === "w1c" ? (old & ~(value & mask)) >>> 0 : ((old & ~mask) | (value & mask)) >>> 0;
  }

  private refuseRead(state: S, offset: number, width: RegisterWidth, slot: Slot<S> | undefined, reason: string): number {
    this.onRefused?.(state, { write: false, offset, width, register: slot?.spec.name, reason });
    return this.fill ? widthMask(width) : 0;
  }

  private refuseWrite(state: S, offset: number, width: RegisterWidth, value: number, slot: Slot<S> | undefined, reason: string): void {
    this.onRefused?.(state, { write: true, offset, width, value, register: slot?.spec.name, reason });
  }
}

function resolve<S>(spec: RegisterSpec<S>, narrowWrite: NarrowWritePolicy): Slot<S> {
  const access = spec.access ?? (spec.write || spec.field !== undefined ? "rw" : "ro");
  const stores = !spec.write && access !== "ro" && access !== "reserved";
  if (stores && spec.field === undefined) throw new RangeError(`register ${spec.name}: a writable register needs a field or a write handler`);
  if (access === "w1c" && (spec.field === undefined || spec.write)) throw new RangeError(`register ${spec.name}: write-1-to-clear needs a field and no write handler`);
  return { spec, access, mask: toUnsigned(spec.mask ?? widthMask(spec.width), spec.width), narrowWrite: spec.narrowWrite ?? narrowWrite };
}

/**
 * A 64-bit register as two 32-bit halves `<name>_lo` (at `offset`) and `<name>_hi` (at `offset + 4`), for drivers
 * that may use either width: an 8-byte access reaches the table as two 4-byte ones, low half first.
 */
export function split64<S>(
  name: string,
  offset: number,
  half: { read(state: S, high: boolean): number; write?(state: S, high: boolean, value: number): RegisterWriteResult },
): [RegisterSpec<S>, RegisterSpec<S>] {
  const make = (high: boolean): RegisterSpec<S> => ({
    name: `${name}_${high ? "hi" : "lo"}`,
    offset: offset + (high ? 4 : 0),
    width: 4,
    read: (s) => half.read(s, high),
    ...(half.write ? { write: (s: S, v: number) => half.write!(s, high, v) } : {}),
  });
  return [make(false), make(true)];
}
