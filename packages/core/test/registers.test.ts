import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  extractBytes,
  nextPowerOfTwo,
  readLE,
  type RegisterRefusal,
  type RegisterSpec,
  RegisterTable,
  split64,
  toUnsigned,
  widthMask,
  writeLE,
} from "../src/index.js";

interface State {
  a: number;
  b: number;
  c: number;
  status: number;
  readonly id: number;
  log: string[];
}

const state = (): State => ({ a: 0, b: 0, c: 0, status: 0, id: 0x8765_4321, log: [] });

const SPECS: readonly RegisterSpec<State>[] = [
  { name: "ID", offset: 0x0, width: 4, field: "id", access: "ro" },
  { name: "A", offset: 0x4, width: 4, field: "a" },
  { name: "B", offset: 0x8, width: 2, field: "b", mask: 0x0fff },
  { name: "C", offset: 0xa, width: 1, read: (s) => (s.log.push("read C"), s.c), write: (s, v) => void (s.c = v) },
  { name: "STATUS", offset: 0xc, width: 4, field: "status", access: "w1c" },
  // 0x10..0x13: no register
  { name: "RSVD", offset: 0x14, width: 4, access: "reserved" },
  { name: "CHECKED", offset: 0x18, width: 2, write: (s, v) => (v > 100 ? `${v} > 100` : void (s.a = v)) },
  { name: "WO", offset: 0x1a, width: 2, field: "c", access: "wo" },
];

const sizes = fc.constantFrom(1 as const, 2 as const, 4 as const);
const values = fc.oneof(fc.constantFrom(0x8000_0000, 0xffff_ffff, 0xffff_0000), fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: -0x8000_0000, max: -1 }));

describe("register table (lanes)", () => {
  const table = (options = {}) => {
    const refused: RegisterRefusal[] = [];
    const t = new RegisterTable<State>(SPECS, { size: 0x20, onRefused: (_s, r) => void refused.push(r), ...options });
    return { t, refused };
  };

  it("reads and writes whole registers through fields, with write masks and unsigned results", () => {
    const { t } = table();
    const s = state();
    expect(t.read(s, 0, 4)).toBe(0x8765_4321);
    t.write(s, 4, 4, -1);
    expect(s.a).toBe(0xffff_ffff);
    expect(t.read(s, 4, 4)).toBe(0xffff_ffff);
    s.b = 0xf000;
    t.write(s, 8, 2, 0xabcd);
    expect(s.b).toBe(0xfbcd); // bits outside the mask keep their value
  });

  it("read-only, write-only, reserved and write-1-to-clear registers", () => {
    const { t, refused } = table();
    const s = state();
    t.write(s, 0, 4, 5);
    expect(s.id).toBe(0x8765_4321);
    expect(refused).toEqual([{ write: true, offset: 0, width: 4, value: 5, register: "ID", reason: "ID is read-only" }]);
    t.write(s, 0x1a, 2, 0x77);
    expect(s.c).toBe(0x77);
    expect(t.read(s, 0x1a, 2)).toBe(0);
    t.write(s, 0x14, 4, 0xffff_ffff);
    expect(t.read(s, 0x14, 4)).toBe(0);
    expect(refused).toHaveLength(1); // reserved: silent
    s.status = 0b1011;
    t.write(s, 0xc, 4, 0b0011);
    expect(s.status).toBe(0b1000);
    t.write(s, 0xd, 1, 0xff); // a narrow write to a w1c register clears only its own lanes
    expect(s.status).toBe(0b1000);
    s.status = 0x8000_0100;
    t.write(s, 0xf, 1, 0x80);
    expect(s.status).toBe(0x100);
  });

  it("a write handler may refuse with a reason", () => {
    const { t, refused } = table();
    const s = state();
    t.write(s, 0x18, 2, 101);
    expect(refused.at(-1)).toMatchObject({ register: "CHECKED", reason: "101 > 100", value: 101 });
    t.write(s, 0x18, 2, 7);
    expect(s.a).toBe(7);
  });

  it("narrow reads extract bytes; narrow writes merge (read-modify-write)", () => {
    const { t } = table();
    const s = state();
    expect(t.read(s, 1, 2)).toBe(0x6543);
    expect(t.read(s, 3, 1)).toBe(0x87);
    s.a = 0x1122_3344;
    t.write(s, 5, 2, 0xaabb);
    expect(s.a).toBe(0x11aa_bb44);
  });

  it("spanning accesses read each register once, low first, and fill gaps", () => {
    const { t, refused } = table();
    const s = state();
    s.b = 0x0234;
    s.c = 0x56;
    expect(t.read(s, 8, 4)).toBe(0x0056_0234); // B (2 bytes), C, a gap byte
    expect(s.log).toEqual(["read C"]);
    expect(t.read(s, 0xe, 4)).toBe(0); // STATUS high half and the gap
    t.write(s, 0x8, 4, 0xff_99_0123);
    expect([s.b, s.c]).toEqual([0x0123, 0x99]);
    expect(s.log).toEqual(["read C"]); // a fully covered register is written without being read
    expect(refused).toEqual([]);
    expect(t.read(s, 0x10, 4)).toBe(0);
    expect(refused).toEqual([{ write: false, offset: 0x10, width: 4, register: undefined, reason: "no register there" }]);
  });

  it("strict policies refuse narrow writes and spanning accesses, and refused reads return the fill", () => {
    const { t, refused } = table({ spanning: "refuse", narrowWrite: "refuse", fill: 0xff });
    const s = state();
    expect(t.read(s, 2, 4)).toBe(0xffff_ffff);
    t.write(s, 4, 2, 1);
    expect(s.a).toBe(0);
    expect(t.read(s, 0x10, 1)).toBe(0xff);
    expect(t.read(s, 0x40, 2)).toBe(0xffff);
    expect(refused.map((r) => r.reason)).toEqual(["access spans registers", "2-byte write to part of a 4-byte register", "no register there", "no register there"]);
    expect(t.read(s, 2, 2)).toBe(0x8765); // narrow reads stay allowed
  });

  it("rejects overlapping, duplicate, out-of-table and unbacked writable registers", () => {
    expect(() => new RegisterTable<State>([SPECS[1]!, { name: "X", offset: 6, width: 4, field: "b" }])).toThrow(/X overlaps A/);
    expect(() => new RegisterTable<State>([SPECS[1]!, { ...SPECS[1]!, offset: 8 }])).toThrow(/declared twice/);
    expect(() => new RegisterTable<State>([SPECS[1]!], { size: 6 })).toThrow(/outside the table/);
    expect(() => new RegisterTable<State>([{ name: "W", offset: 0, width: 1, access: "rw" }])).toThrow(/needs a field or a write handler/);
    expect(() => new RegisterTable<State>([{ name: "W", offset: 0, width: 1, access: "w1c", write: () => {} }])).toThrow(/write-1-to-clear/);
  });

  it("whatever the access, nothing throws and reads are unsigned numbers of the access width (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.record({ write: fc.boolean(), offset: fc.integer({ min: 0, max: 0x24 }), size: sizes, value: values }), { maxLength: 40 }), fc.boolean(), (ops, strict) => {
        const { t } = table(strict ? { spanning: "refuse", narrowWrite: "refuse", narrowRead: "refuse", fill: 0xff } : {});
        const s = state();
        for (const op of ops) {
          if (op.write) t.write(s, op.offset, op.size, op.value);
          else {
            const v = t.read(s, op.offset, op.size);
            expect(Number.isInteger(v) && v >= 0 && v <= widthMask(op.size)).toBe(true);
          }
          for (const k of ["a", "b", "c", "status"] as const) expect(s[k] >= 0 && s[k] <= 0xffff_ffff).toBe(true);
        }
      }),
    );
  });

  it("a lanes access equals the same bytes accessed one at a time when registers are bytes (ISA)", () => {
    const bytes: RegisterSpec<{ r: number[] }>[] = [0, 1, 2].map((i) => ({ name: `R${i}`, offset: i, width: 1, read: (s) => s.r[i]!, write: (s, v) => void (s.r[i] = v) }));
    const t = new RegisterTable(bytes, { size: 4, fill: 0xff });
    const s = { r: [1, 2, 3] };
    expect(t.read(s, 0, 4)).toBe(0xff03_0201);
    expect(t.read(s, 2, 2)).toBe(0xff03);
    t.write(s, 1, 4, 0xaabb_ccdd);
    expect(s.r).toEqual([1, 0xdd, 0xcc]);
  });

  it("split64 serves a 64-bit value as two 32-bit halves", () => {
    const s = { v: 0n };
    const t = new RegisterTable(
      split64<{ v: bigint }>("addr", 8, {
        read: (st, hi) => Number((st.v >> (hi ? 32n : 0n)) & 0xffff_ffffn),
        write: (st, hi, w) => void (st.v = hi ? (st.v & 0xffff_ffffn) | (BigInt(w) << 32n) : (st.v & ~0xffff_ffffn) | BigInt(w)),
      }),
    );
    const h = t.handler(s);
    h.write(8, 4, 0x8000_0001);
    h.write(12, 4, 0xffff_ffff);
    expect(s.v).toBe(0xffff_ffff_8000_0001n);
    expect([h.read(8, 4), h.read(12, 4), h.read(10, 4)]).toEqual([0x8000_0001, 0xffff_ffff, 0xffff_8000]);
    expect(t.registers.map((r) => r.name)).toEqual(["addr_lo", "addr_hi"]);
  });
});

describe("register table (port)", () => {
  interface Ports {
    index: number;
    data: number[];
  }
  const t = new RegisterTable<Ports>([
    { name: "INDEX", offset: 0, width: 2, field: "index" },
    { name: "DATA", offset: 1, width: 2, read: (s) => s.data[s.index] ?? 0, write: (s, v) => void (s.data[s.index] = v), narrowWrite: "zero-extend" },
  ], { decode: "port" });

  it("an access goes to the register at its offset, cut or zero-extended to the register", () => {
    const s: Ports = { index: 0, data: [] };
    t.write(s, 0, 4, 0x1_0003);
    expect(s.index).toBe(3);
    t.write(s, 0, 1, 0x0105);
    expect(s.index).toBe(5); // a byte write merges into the low byte
    t.write(s, 1, 2, 0xbeef);
    expect([t.read(s, 1, 4), t.read(s, 1, 1)]).toEqual([0xbeef, 0xef]);
    t.write(s, 1, 1, 0x42);
    expect(s.data[5]).toBe(0x42); // the data port zero-extends a byte write
    expect(t.read(s, 2, 2)).toBe(0);
    expect(t.peek(s, "INDEX")).toBe(5);
  });
});

describe("register helpers", () => {
  it("width masks, unsigned cuts and byte extraction", () => {
    expect([widthMask(1), widthMask(2), widthMask(4)]).toEqual([0xff, 0xffff, 0xffff_ffff]);
    expect(toUnsigned(-1, 4)).toBe(0xffff_ffff);
    expect(toUnsigned(0x1_2345, 2)).toBe(0x2345);
    expect(extractBytes(0x8877_6655, 2, 2)).toBe(0x8877);
    expect(extractBytes(0x8877_6655, 4, 1)).toBe(0);
  });

  it("little-endian reads and writes; bytes past the end read 0 and are not written", () => {
    const b = new Uint8Array(5);
    writeLE(b, 0, 4, 0xdead_beef);
    writeLE(b, 3, 4, 0x1122_3344);
    expect([...b]).toEqual([0xef, 0xbe, 0xad, 0x44, 0x33]);
    expect(readLE(b, 0, 4)).toBe(0x44ad_beef);
    expect(readLE(b, 3, 4)).toBe(0x3344);
    expect(readLE(b, 1, 2)).toBe(0xadbe);
  });

  it("nextPowerOfTwo", () => {
    expect([0, 1, 2, 3, 4, 5, 2049, 4096].map(nextPowerOfTwo)).toEqual([1, 1, 2, 4, 4, 8, 4096, 4096]);
  });
});
