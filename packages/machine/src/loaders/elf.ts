import { ConfigurationError, type GuestMemory } from "@vmm/core";
import { longModeEntry, writeIdentityPaging } from "../x86_64/cpu-state.js";
import { Layout } from "../x86_64/memory-map.js";
import { place, type LoadedImage } from "./image.js";

const PT_LOAD = 1;
const EM_X86_64 = 62;

export interface ElfSegment {
  readonly paddr: number;
  readonly fileOffset: number;
  readonly fileSize: number;
  readonly memSize: number;
}

export interface ElfImage {
  readonly entry: number;
  readonly segments: readonly ElfSegment[];
}

function bad(why: string): never {
  throw new ConfigurationError(`ELF kernel image: ${why}`);
}

function u64(view: DataView, off: number, what: string): number {
  const v = view.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) bad(`${what} 0x${v.toString(16)} is out of range`);
  return Number(v);
}

/** Parses and validates an x86_64 ELF executable's header and PT_LOAD program headers. */
export function parseElf64(image: Uint8Array): ElfImage {
  if (image.length < 64) bad("file is shorter than an ELF header");
  if (image[0] !== 0x7f || image[1] !== 0x45 || image[2] !== 0x4c || image[3] !== 0x46) bad("no ELF magic");
  if (image[4] !== 2) bad("not a 64-bit ELF (EI_CLASS)");
  if (image[5] !== 1) bad("not little-endian");
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (view.getUint16(18, true) !== EM_X86_64) bad(`machine ${view.getUint16(18, true)} is not x86_64`);
  const entry = u64(view, 24, "entry point");
  const phoff = u64(view, 32, "program header offset");
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  if (phentsize < 56) bad(`program header size ${phentsize} is too small`);
  if (phoff + phnum * phentsize > image.length) bad("program headers extend past the end of the file");
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (view.getUint32(ph, true) !== PT_LOAD) continue;
    const fileOffset = u64(view, ph + 8, "segment offset");
    const paddr = u64(view, ph + 24, "segment address");
    const fileSize = u64(view, ph + 32, "segment file size");
    const memSize = u64(view, ph + 40, "segment memory size");
    if (fileSize > memSize) bad(`segment ${i} has file size larger than memory size`);
    if (fileOffset + fileSize > image.length) bad(`segment ${i} extends past the end of the file`);
    if (memSize > 0) segments.push({ paddr, fileOffset, fileSize, memSize });
  }
  if (segments.length === 0) bad("no loadable segments");
  return { entry, segments };
}

/** Ranges the VMM itself writes (GDT, page tables, boot data, firmware tables): an ELF image may not use them. */
const RESERVED: readonly [number, number][] = [
  [0, Layout.rawLoad],
  [Layout.ebda, Layout.biosEnd],
];

/**
 * Loads an ELF64 executable at its physical addresses and enters it in 64-bit mode with identity page tables
 * (first 4 GiB) and a flat GDT built by the VMM; RSP is 0 (the guest sets its own stack). APs enter at the same
 * point; the guest tells them apart by their local APIC ID.
 */
export function loadElf(memory: GuestMemory, image: Uint8Array): LoadedImage {
  const elf = parseElf64(image);
  for (const s of elf.segments) {
    for (const [lo, hi] of RESERVED) {
      if (s.paddr < hi && s.paddr + s.memSize > lo) {
        bad(`segment at 0x${s.paddr.toString(16)} overlaps VMM data [0x${lo.toString(16)}, 0x${hi.toString(16)})`);
      }
    }
    if (!memory.contains(s.paddr, s.memSize)) {
      bad(`segment at 0x${s.paddr.toString(16)} (+0x${s.memSize.toString(16)}) lies outside guest RAM`);
    }
  }
  for (const s of elf.segments) {
    place(memory, s.paddr, image.subarray(s.fileOffset, s.fileOffset + s.fileSize), "ELF segment");
    // segments(): a segment may cross a boundary between RAM chunks (guest RAM above 4 GiB).
    for (const part of memory.segments(s.paddr + s.fileSize, s.memSize - s.fileSize)) part.fill(0);
  }
  writeIdentityPaging(memory);
  const entry = longModeEntry({ rip: elf.entry });
  return {
    kind: "elf",
    entry,
    apEntry: entry,
    segments: elf.segments.map((s) => ({ gpa: s.paddr, size: s.memSize })),
  };
}
