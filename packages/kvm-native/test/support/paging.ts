// A 64-bit CPL0 entry with page tables the test chooses: the first 4 GiB identity-mapped (2 MiB pages) plus
// extra 2 MiB mappings (high RAM, kernel-style high virtual addresses). Tables live in `low` (guest-physical 0).
import type { Segment, Vcpu } from "../../src/index.js";

const GDT = 0x500;
const PML4 = 0x9000;
const FIRST_FREE_TABLE = 0x20000;

export interface Mapping2M {
  virt: bigint;
  phys: bigint;
}

/** Writes a GDT and page tables into `low` (RAM from guest-physical 0, at least 0x40000 bytes). */
export function writePaging(low: Uint8Array, extra: readonly Mapping2M[] = []): void {
  const view = new DataView(low.buffer, low.byteOffset, low.byteLength);
  const get = (at: number) => view.getBigUint64(at, true);
  const set = (at: number, v: bigint) => view.setBigUint64(at, v, true);
  let next = FIRST_FREE_TABLE;
  const table = (entryAt: number): number => {
    if ((get(entryAt) & 1n) === 0n) {
      low.fill(0, next, next + 0x1000);
      set(entryAt, BigInt(next) | 3n);
      next += 0x1000;
    }
    return Number(get(entryAt) & ~0xfffn);
  };
  set(GDT + 8, 0x00af9a000000ffffn); // 0x08: 64-bit code
  set(GDT + 16, 0x00cf92000000ffffn); // 0x10: data
  low.fill(0, PML4, PML4 + 0x1000);
  const map = (virt: bigint, phys: bigint) => {
    const pdpt = table(PML4 + Number((virt >> 39n) & 511n) * 8);
    const pd = table(pdpt + Number((virt >> 30n) & 511n) * 8);
    set(pd + Number((virt >> 21n) & 511n) * 8, phys | 0x83n);
  };
  for (let p = 0n; p < 4n << 30n; p += 2n << 20n) map(p, p);
  for (const m of extra) map(m.virt, m.phys);
}

/** Puts `vcpu` in 64-bit mode at `rip` with the tables writePaging wrote. */
export function enterLongMode(vcpu: Vcpu, rip: number | bigint): void {
  const flat = { base: 0, limit: 0xffffffff, present: 1, dpl: 0, s: 1, g: 1, avl: 0, unusable: 0 };
  const code: Segment = { ...flat, selector: 0x08, type: 11, db: 0, l: 1 };
  const data: Segment = { ...flat, selector: 0x10, type: 3, db: 1, l: 0 };
  const tr: Segment = { ...flat, selector: 0, type: 11, s: 0, db: 0, l: 0, g: 0, limit: 0x67 };
  vcpu.setSregs({
    cs: code, ds: data, es: data, fs: data, gs: data, ss: data, tr,
    gdt: { base: GDT, limit: 23 },
    cr0: 0x80000011, cr3: PML4, cr4: 0x20, efer: 0x500,
  });
  vcpu.setRegs({ rip, rflags: 2, rsp: 0x80000 });
}
