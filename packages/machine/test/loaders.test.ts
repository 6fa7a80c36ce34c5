import { ConfigurationError, GuestMemory } from "@vmm/core";
import { describe, expect, it } from "vitest";
import {
  BootParams,
  Layout,
  buildMemoryMap,
  loadBzImage,
  loadElf,
  loadRaw,
  lz4DecodeBlock,
  lz4DecodeLegacy,
} from "../src/index.js";

const MiB = 1024 * 1024;
const ram = (mib = 64) => new GuestMemory([{ gpa: 0, bytes: new Uint8Array(mib * MiB) }]);

describe("memory map", () => {
  it("puts RAM below the PCI hole and reserves firmware and ECAM regions", () => {
    const map = buildMemoryMap(64);
    expect(map.ram).toEqual([{ gpa: 0, size: 64 * MiB }]);
    expect(map.e820.map((e) => [e.addr, e.size, e.type])).toEqual([
      [0, 0x9fc00, 1],
      [0x9fc00, 0x400, 2],
      [0xf0000, 0x10000, 2],
      [0x100000, 63 * MiB, 1],
      [0xe0000000, 256 * MiB, 2],
      [0xfffbc000, 0x4000, 2],
    ]);
  });

  it("continues RAM above 4 GiB when it does not fit below the hole", () => {
    const map = buildMemoryMap(4096);
    expect(map.ram).toEqual([
      { gpa: 0, size: 0xc0000000 },
      { gpa: 0x100000000, size: 1024 * MiB },
    ]);
    expect(map.e820.at(-1)).toEqual({ addr: 0x100000000, size: 1024 * MiB, type: 1 });
    expect(map.highBytes).toBe(1024 * MiB);
  });

  it("refuses nonsense sizes", () => {
    expect(() => buildMemoryMap(1)).toThrow(ConfigurationError);
    expect(() => buildMemoryMap(1.5)).toThrow(/whole number/);
  });
});

describe("raw loader", () => {
  it("loads at 0x10000 and enters real mode at 1000:0000 with SP 0x8000, like kvmtool", () => {
    const memory = ram();
    const loaded = loadRaw(memory, new Uint8Array([0xf4, 0x90]));
    expect(memory.readU16(0x10000)).toBe(0x90f4);
    expect(loaded.entry.mode).toBe("real");
    expect(loaded.entry.regs).toMatchObject({ rip: 0, rsp: 0x8000 });
    for (const s of ["cs", "ds", "es", "ss"] as const) expect(loaded.entry.sregs[s]).toMatchObject({ selector: 0x1000, base: 0x10000 });
    expect(loaded.apEntry).toBe(loaded.entry);
  });

  it("refuses an image that would run into the EBDA", () => {
    expect(() => loadRaw(ram(), new Uint8Array(0x9fc00 - 0x10000 + 1))).toThrow(/at most/);
    expect(() => loadRaw(ram(), new Uint8Array(0))).toThrow(/empty/);
  });
});

/** A minimal ELF64 executable with the given PT_LOAD segments. */
function elf(entry: number, segments: { paddr: number; data: number[]; memSize?: number }[]): Uint8Array {
  const phoff = 64;
  const dataStart = phoff + 56 * segments.length;
  const total = dataStart + segments.reduce((n, s) => n + s.data.length, 0);
  const b = new Uint8Array(total);
  const v = new DataView(b.buffer);
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, 2, true);
  v.setUint16(18, 62, true);
  v.setBigUint64(24, BigInt(entry), true);
  v.setBigUint64(32, BigInt(phoff), true);
  v.setUint16(54, 56, true);
  v.setUint16(56, segments.length, true);
  let off = dataStart;
  segments.forEach((s, i) => {
    const ph = phoff + i * 56;
    v.setUint32(ph, 1, true);
    v.setBigUint64(ph + 8, BigInt(off), true);
    v.setBigUint64(ph + 16, BigInt(s.paddr), true);
    v.setBigUint64(ph + 24, BigInt(s.paddr), true);
    v.setBigUint64(ph + 32, BigInt(s.data.length), true);
    v.setBigUint64(ph + 40, BigInt(s.memSize ?? s.data.length), true);
    b.set(s.data, off);
    off += s.data.length;
  });
  return b;
}

describe("ELF loader", () => {
  it("copies PT_LOAD segments to their physical addresses, zeroes .bss and enters 64-bit mode", () => {
    const memory = ram();
    memory.writeU8(0x200003, 0xaa);
    const loaded = loadElf(memory, elf(0x200000, [{ paddr: 0x200000, data: [1, 2, 3], memSize: 8 }]));
    expect([...memory.view(0x200000, 5)]).toEqual([1, 2, 3, 0, 0]);
    expect(loaded.entry.mode).toBe("long");
    expect(loaded.entry.regs.rip).toBe(0x200000);
    expect(loaded.entry.sregs).toMatchObject({ cr3: Layout.pageTables, efer: 0x500, cs: { l: 1, selector: 0x10 } });
    expect(loaded.entry.sregs.cr0! >>> 0).toBe(0x80000011);
    // identity map: PML4[0] -> PDPT, PDPT[3] -> the 4th directory, its last entry maps 0xffe00000 with 2 MiB pages
    expect(Number(memory.readU64(Layout.pageTables)) & ~0xfff).toBe(Layout.pageTables + 0x1000);
    const pd3 = Number(memory.readU64(Layout.pageTables + 0x1000 + 24)) & ~0xfff;
    expect(memory.readU64(pd3 + 511 * 8)).toBe(0xffe00000n | 0x83n);
  });

  it("rejects malformed and misplaced images with clear errors", () => {
    const memory = ram();
    expect(() => loadElf(memory, new Uint8Array(100))).toThrow(/no ELF magic/);
    const bad = elf(0x200000, [{ paddr: 0x200000, data: [1] }]);
    bad[4] = 1;
    expect(() => loadElf(memory, bad)).toThrow(/64-bit/);
    expect(() => loadElf(memory, elf(0x1000, [{ paddr: 0x1000, data: [1] }]))).toThrow(/overlaps VMM data/);
    expect(() => loadElf(memory, elf(0, [{ paddr: 0x8000000, data: [1] }]))).toThrow(/outside guest RAM/);
    const truncated = elf(0x200000, [{ paddr: 0x200000, data: [1, 2, 3, 4] }]).subarray(0, 64 + 56 + 2);
    expect(() => loadElf(memory, truncated)).toThrow(/past the end/);
  });
});

/** A fake bzImage: 4 setup sectors with a 2.15 header, then a protected-mode part. */
function bzImage(options: { version?: number; xloadflags?: number; payload?: Uint8Array } = {}): Uint8Array {
  const setupSects = 4;
  const pm = options.payload ?? new Uint8Array([0xf4, 0xf4, 0xf4, 0xf4]);
  const b = new Uint8Array((setupSects + 1) * 512 + pm.length);
  const v = new DataView(b.buffer);
  b[0x1f1] = setupSects;
  b[0x200] = 0xeb;
  b[0x201] = 0x6a; // header ends at 0x26c
  v.setUint32(0x202, 0x53726448, true);
  v.setUint16(0x206, options.version ?? 0x20f, true);
  b[0x211] = 0x01;
  v.setUint32(0x214, 0x100000, true);
  v.setUint32(0x22c, 0x7fffffff, true);
  v.setUint16(0x236, options.xloadflags ?? 0x7f, true);
  v.setUint32(0x238, 2047, true);
  v.setUint32(0x260, 0x1000000, true);
  b.set(pm, (setupSects + 1) * 512);
  return b;
}

describe("bzImage loader", () => {
  const e820 = buildMemoryMap(64).e820;

  it("fills boot_params from the image's setup header, the command line, initrd and e820, and enters at +0x200", () => {
    const memory = ram();
    const initrd = new Uint8Array(10000).fill(7);
    const loaded = loadBzImage(memory, bzImage(), { cmdline: "console=ttyS0 quiet", initrd, e820, decompress: "guest" });
    const bp = Layout.bootParams;
    expect(memory.readU32(bp + 0x202)).toBe(0x53726448);
    expect(memory.readU16(bp + 0x206)).toBe(0x20f);
    expect(memory.readU8(bp + BootParams.typeOfLoader)).toBe(0xff);
    expect(memory.readU8(bp + BootParams.loadflags)).toBe(0x81);
    expect(memory.readU32(bp + BootParams.initrdAddrMax)).toBe(0x7fffffff);
    const cmd = memory.readU32(bp + BootParams.cmdLinePtr);
    expect(new TextDecoder().decode(memory.view(cmd, 20))).toBe("console=ttyS0 quiet\0");
    expect(memory.readU8(bp + BootParams.e820Entries)).toBe(e820.length);
    expect(memory.readU64(bp + BootParams.e820Table + 3 * 20)).toBe(0x100000n);
    expect(memory.readU32(bp + BootParams.e820Table + 3 * 20 + 16)).toBe(1);
    const rd = memory.readU32(bp + BootParams.ramdiskImage);
    expect(memory.readU32(bp + BootParams.ramdiskSize)).toBe(10000);
    expect(rd % 4096).toBe(0);
    expect(rd + 10000).toBeLessThanOrEqual(64 * MiB);
    expect(memory.readU8(rd + 9999)).toBe(7);
    expect(memory.readU32(0x100000)).toBe(0xf4f4f4f4);
    expect(loaded.entry.regs).toMatchObject({ rip: 0x100200, rsi: bp });
    expect(loaded.apEntry).toBeUndefined();
  });

  it("refuses what it cannot boot", () => {
    const memory = ram();
    expect(() => loadBzImage(memory, new Uint8Array(4096), { cmdline: "", e820 })).toThrow(/HdrS/);
    expect(() => loadBzImage(memory, bzImage({ version: 0x206 }), { cmdline: "", e820 })).toThrow(/too old/);
    expect(() => loadBzImage(memory, bzImage({ xloadflags: 0 }), { cmdline: "", e820 })).toThrow(/64-bit entry/);
    expect(() => loadBzImage(memory, bzImage(), { cmdline: "x".repeat(3000), e820, decompress: "guest" })).toThrow(/at most 2047/);
  });
});

describe("LZ4", () => {
  it("decodes literals and overlapping matches", () => {
    // "abc" then a match of length 9 at offset 3 -> "abcabcabcabc", then the final literal "!"
    const block = new Uint8Array([0x35, 0x61, 0x62, 0x63, 0x03, 0x00, 0x10, 0x21]);
    const out = new Uint8Array(32);
    const n = lz4DecodeBlock(block, out, 0);
    expect(new TextDecoder().decode(out.subarray(0, n))).toBe("abcabcabcabc!");
  });

  it("decodes the legacy stream and rejects corrupt input", () => {
    const block = [0x35, 0x61, 0x62, 0x63, 0x03, 0x00, 0x10, 0x21];
    const stream = new Uint8Array([0x02, 0x21, 0x4c, 0x18, block.length, 0, 0, 0, ...block]);
    expect(new TextDecoder().decode(lz4DecodeLegacy(stream, 64))).toBe("abcabcabcabc!");
    expect(() => lz4DecodeBlock(new Uint8Array([0x05, 0x61, 0x09, 0x00]), new Uint8Array(32), 0)).toThrow(/bad match offset/);
    expect(() => lz4DecodeLegacy(new Uint8Array(8), 8)).toThrow(/legacy/);
  });
});
