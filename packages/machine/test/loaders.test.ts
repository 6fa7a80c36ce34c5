import { ConfigurationError, GuestMemory } from "@vmm/core";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  BootParams,
  Layout,
  buildMemoryMap,
  decompressPayload,
  decompressPayloadAsync,
  loadBzImage,
  parseSetupHeader,
  payloadFormat,
  payloadOf,
  loadElf,
  loadRaw,
  lz4DecodeBlock,
  lz4DecodeLegacy,
} from "./internals.js";

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

  it("zeroes a .bss that crosses from one RAM chunk into the next (RAM above 4 GiB comes in chunks)", () => {
    const chunk = 16 * MiB;
    const memory = new GuestMemory([
      { gpa: 0, bytes: new Uint8Array(chunk) },
      { gpa: chunk, bytes: new Uint8Array(chunk) },
    ]);
    memory.write(chunk - 4, Uint8Array.of(9, 9, 9, 9, 9, 9, 9, 9));
    loadElf(memory, elf(chunk - 8, [{ paddr: chunk - 8, data: [1, 2], memSize: 16 }]));
    expect([...memory.segments(chunk - 8, 16).flatMap((p) => [...p])]).toEqual([1, 2, ...new Array(14).fill(0)]);
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
function bzImage(
  options: { version?: number; xloadflags?: number; payload?: Uint8Array; payloadOffset?: number; payloadLength?: number } = {},
): Uint8Array {
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
  v.setUint32(0x248, options.payloadOffset ?? 0, true);
  v.setUint32(0x24c, options.payloadLength ?? 0, true);
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

/** Prints a banner that cannot be missed in the test output, for a check skipped for want of a file or tool. */
function loudSkip(what: string, why: string): void {
  const line = `# SKIPPED: ${what}: ${why}`;
  const bar = "#".repeat(Math.max(64, line.length + 2));
  console.warn(`\n${bar}\n${line}\n${bar}\n`);
}

const hasXz = (() => {
  try {
    execFileSync("xz", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
if (!hasXz) loudSkip("XZ payload tests", "the xz command (Debian xz-utils) is missing");

/** Compresses like Linux's scripts/xz_wrap.sh for x86: the x86 BCJ filter, then LZMA2, with a CRC32 check. */
const xzCli = (data: Uint8Array) => new Uint8Array(execFileSync("xz", ["--format=xz", "--check=crc32", "--x86", "--lzma2=preset=6", "-c"], { input: data, maxBuffer: 1 << 30 }));

/** A bzImage whose payload is `compressed` followed by the decompressed size, as the kernel's build lays it out. */
function payloadImage(compressed: Uint8Array, size: number): Uint8Array {
  const payload = new Uint8Array(compressed.length + 4);
  payload.set(compressed);
  new DataView(payload.buffer).setUint32(compressed.length, size, true);
  return bzImage({ payload, payloadOffset: 0, payloadLength: payload.length });
}

/** Code-like bytes: random, with many CALL/JMP rel32 whose targets the x86 BCJ filter rewrites. */
function codeLike(size: number): number[] {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  const out: number[] = [];
  while (out.length < size) {
    const r = rand();
    if (r < 40) out.push(0xe8, rand(), rand(), r & 1 ? 0x00 : 0xff, r & 2 ? 0x00 : 0xff);
    else if (r < 50) out.push(0xe9, rand(), rand(), 0x00, 0x00);
    else if (r < 60) out.push(0xe8, 0xe8, rand(), 0xe8, 0x00, 0xff);
    else out.push(r);
  }
  return out.slice(0, size);
}

describe.skipIf(!hasXz)("bzImage with an XZ payload (x86 BCJ + LZMA2, as Debian's generic kernel)", () => {
  const e820 = buildMemoryMap(64).e820;
  const vmlinux = elf(0x1234567, [
    { paddr: 0x1000000, data: codeLike(300_000) },
    { paddr: 0x1200000, data: codeLike(5000), memSize: 0x3000 },
  ]);

  it("is decompressed on the host, byte for byte what the xz command put in", async () => {
    const image = payloadImage(xzCli(vmlinux), vmlinux.length);
    // Synchronously only gzip and LZ4 are decoded; XZ needs the asynchronous path.
    expect(decompressPayload(image)).toBeUndefined();
    const decoded = await decompressPayloadAsync(image);
    expect(decoded).toBeDefined();
    expect(Buffer.from(decoded!).equals(Buffer.from(vmlinux))).toBe(true);

    const memory = ram(64);
    const loaded = loadBzImage(memory, image, { cmdline: "", e820, vmlinux: decoded });
    expect(loaded.entry.regs).toMatchObject({ rip: 0x1234567, rsi: Layout.bootParams });
    expect(loaded.note).toMatch(/decompressed by the VMM/);
    expect(Buffer.from(memory.view(0x1000000, 300_000)).equals(Buffer.from(vmlinux.subarray(64 + 2 * 56, 64 + 2 * 56 + 300_000)))).toBe(true);
    expect(memory.readU8(0x1200000 + 0x2fff)).toBe(0);
  });

  it("rejects a corrupt stream and a wrong size trailer with clear errors", async () => {
    const xz = xzCli(vmlinux);
    const corrupt = xz.slice();
    corrupt[200] ^= 0x55;
    await expect(decompressPayloadAsync(payloadImage(corrupt, vmlinux.length))).rejects.toThrow(/bzImage: the compressed kernel cannot be decoded: xz: /);
    await expect(decompressPayloadAsync(payloadImage(xz, vmlinux.length + 1))).rejects.toThrow(/decodes to \d+ bytes, not the \d+ its trailer says/);
  });
});

/** Debian's generic amd64 kernel (linux-image-amd64) is XZ-compressed; the cloud kernel is LZ4. */
const xzKernel = (() => {
  if (!existsSync("/boot")) return undefined;
  for (const name of readdirSync("/boot").filter((n) => n.startsWith("vmlinuz-")).sort()) {
    const file = path.join("/boot", name);
    const bytes = new Uint8Array(readFileSync(file));
    try {
      const payload = payloadOf(bytes);
      if (payload && payloadFormat(payload) === "xz") return { file, bytes, payload };
    } catch {
      // not a bzImage this loader reads
    }
  }
  return undefined;
})();
if (!xzKernel) loudSkip("XZ decode of a real kernel", "no XZ-compressed /boot/vmlinuz-* (apt-get install linux-image-amd64)");
else if (!hasXz) loudSkip("XZ decode of a real kernel", "the xz command is missing for the reference");

describe.skipIf(!xzKernel || !hasXz)("a real XZ kernel", () => {
  it("decodes on the host to exactly what liblzma (xz -dc) gives, and reports both times", async () => {
    const { file, bytes, payload } = xzKernel!;
    const dir = mkdtempSync(path.join(tmpdir(), "vmm-xz-"));
    const xzFile = path.join(dir, "payload.xz");
    writeFileSync(xzFile, payload.subarray(0, payload.length - 4));
    let t = performance.now();
    const reference = execFileSync("xz", ["-dc", xzFile], { maxBuffer: 1 << 30 });
    const liblzmaMs = performance.now() - t;
    t = performance.now();
    const decoded = await decompressPayloadAsync(bytes);
    const oursMs = performance.now() - t;
    console.log(
      `XZ decode of ${file} (${payload.length} -> ${reference.length} bytes): xz -dc ${liblzmaMs.toFixed(0)} ms, ` +
        `vmm (xz-decompress wasm + BCJ) ${oursMs.toFixed(0)} ms, ratio ${(oursMs / liblzmaMs).toFixed(1)}x`,
    );
    const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
    expect(sha(decoded!)).toBe(sha(reference));
    expect(Buffer.from(decoded!.subarray(0, 4)).toString("latin1")).toBe("\x7fELF");
  }, 60_000);
});

describe("bzImage without payload hints (memtest86+: payload_offset = payload_length = 0)", () => {
  const e820 = buildMemoryMap(64).e820;

  it("is loaded like the boot protocol says and entered at code32_start + 0x200, not refused", () => {
    const memory = ram();
    const pm = new Uint8Array(0x1000).map((_, i) => (i * 7) & 0xff);
    const loaded = loadBzImage(memory, bzImage({ payload: pm }), { cmdline: "console=ttyS0", e820 });
    expect(loaded.entry.regs).toMatchObject({ rip: 0x100200, rsi: Layout.bootParams });
    expect(loaded.note).toMatch(/no compressed payload/);
    expect(Buffer.from(memory.view(0x100000, pm.length)).equals(Buffer.from(pm))).toBe(true);
  });

  it("a payload hint that points outside the file is still refused", () => {
    expect(() => loadBzImage(ram(), bzImage({ payloadOffset: 0x10000, payloadLength: 64 }), { cmdline: "", e820 })).toThrow(/payload lies outside the file/);
  });
});

const MEMTEST = "/boot/memtest86+x64.bin";
if (!existsSync(MEMTEST)) loudSkip("memtest86+ loader test", `${MEMTEST} is missing (apt-get install memtest86+)`);

describe.skipIf(!existsSync(MEMTEST))("memtest86+ (Debian's memtest86+ package)", () => {
  const e820 = buildMemoryMap(64).e820;

  it("is accepted, its protected-mode code placed at 1 MiB and entered at its 64-bit entry", () => {
    const image = new Uint8Array(readFileSync(MEMTEST));
    const hdr = parseSetupHeader(image);
    expect([hdr.payloadOffset, hdr.payloadLength]).toEqual([0, 0]);
    const memory = ram(64);
    const loaded = loadBzImage(memory, image, { cmdline: "console=ttyS0", e820 });
    expect(loaded.entry.regs).toMatchObject({ rip: 0x100200, rsi: Layout.bootParams });
    const pm = image.subarray((hdr.setupSects + 1) * 512);
    expect(Buffer.from(memory.view(0x100000, pm.length)).equals(Buffer.from(pm))).toBe(true);
    expect(memory.readU32(Layout.bootParams + BootParams.code32Start)).toBe(0x100000);
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
