import type { GuestMemory } from "@vmm/core";
import type { DescriptorTable, Segment } from "@vmm/kvm-native";
import { Layout } from "./memory-map.js";

/** The special registers a loader sets; everything else keeps KVM's reset value. */
export interface SregsPatch {
  cs: Segment;
  ds: Segment;
  es: Segment;
  fs: Segment;
  gs: Segment;
  ss: Segment;
  gdt?: DescriptorTable;
  cr0?: number;
  cr3?: number;
  cr4?: number;
  efer?: number;
}

/** The general registers a loader sets (rflags bit 1 is always set). */
export interface RegsPatch {
  rip: number;
  rsp?: number;
  rsi?: number;
  rdi?: number;
  rbp?: number;
  rflags?: number;
}

/** Where and how a vCPU starts. */
export interface EntryState {
  readonly mode: "real" | "long";
  readonly regs: RegsPatch;
  readonly sregs: SregsPatch;
}

const realSegment = (selector: number): Segment => ({
  base: selector * 16, limit: 0xffff, selector, type: 3, present: 1, dpl: 0, db: 0, s: 1, l: 0, g: 0, avl: 0,
});

/** Real mode at segment:offset, like kvmtool for raw binaries (CS=DS=ES=SS=segment). */
export function realModeEntry(segment: number, ip: number, sp: number): EntryState {
  const data = realSegment(segment);
  return {
    mode: "real",
    regs: { rip: ip, rsp: sp, rflags: 0x2 },
    sregs: { cs: { ...data, type: 0xb }, ds: data, es: data, fs: data, gs: data, ss: data },
  };
}

export const BootSelectors = { code64: 0x10, data: 0x18 } as const;

/** GDT: null, null, 64-bit code at 0x10, flat data at 0x18 (the selectors Linux's 64-bit boot protocol names). */
const GDT_ENTRIES = [0n, 0n, 0x00af9a000000ffffn, 0x00cf92000000ffffn];

const PTE_PRESENT = 1n;
const PTE_WRITE = 2n;
const PDE_LARGE = 0x80n;
const CR0_PE = 1;
const CR0_PG = 0x8000_0000;
const CR0_ET = 0x10;
const CR4_PAE = 0x20;
const EFER_LME = 0x100;
const EFER_LMA = 0x400;

/**
 * Writes the GDT and identity page tables for the first 4 GiB (2 MiB pages) into guest RAM at their fixed
 * places in `Layout`.
 */
export function writeIdentityPaging(memory: GuestMemory): void {
  GDT_ENTRIES.forEach((d, i) => memory.writeU64(Layout.gdt + i * 8, d));
  const pml4 = Layout.pageTables;
  const pdpt = pml4 + 0x1000;
  const pd = pdpt + 0x1000;
  memory.view(pml4, Layout.pageTablesEnd - pml4).fill(0);
  memory.writeU64(pml4, BigInt(pdpt) | PTE_PRESENT | PTE_WRITE);
  for (let g = 0; g < 4; g++) {
    const dir = pd + g * 0x1000;
    memory.writeU64(pdpt + g * 8, BigInt(dir) | PTE_PRESENT | PTE_WRITE);
    for (let i = 0; i < 512; i++) {
      const phys = (BigInt(g) << 30n) | (BigInt(i) << 21n);
      memory.writeU64(dir + i * 8, phys | PTE_PRESENT | PTE_WRITE | PDE_LARGE);
    }
  }
}

/** 64-bit mode at `rip` with the identity tables of writeIdentityPaging (which must have been called). */
export function longModeEntry(regs: RegsPatch): EntryState {
  const code: Segment = { base: 0, limit: 0xffffffff, selector: BootSelectors.code64, type: 0xb, present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1, avl: 0 };
  const data: Segment = { ...code, selector: BootSelectors.data, type: 3, l: 0, db: 1 };
  return {
    mode: "long",
    regs: { rflags: 0x2, ...regs },
    sregs: {
      cs: code, ds: data, es: data, fs: data, gs: data, ss: data,
      gdt: { base: Layout.gdt, limit: GDT_ENTRIES.length * 8 - 1 },
      cr0: CR0_PE + CR0_PG + CR0_ET,
      cr3: Layout.pageTables,
      cr4: CR4_PAE,
      efer: EFER_LME | EFER_LMA,
    },
  };
}
