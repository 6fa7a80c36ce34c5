import { ConfigurationError, type GuestMemory } from "@vmm/core";
import { longModeEntry, writeIdentityPaging } from "../x86_64/cpu-state.js";
import { Layout, type E820Entry } from "../x86_64/memory-map.js";
import { zlib } from "./builtins.js";
import { parseElf64 } from "./elf.js";
import { place, type LoadedImage } from "./image.js";
import { lz4DecodeLegacy } from "./lz4.js";
import { xzDecode } from "./xz.js";

/** Offsets in the x86 boot protocol's boot_params ("zero page") and setup header (Documentation/x86/boot). */
export const BootParams = {
  /** struct screen_info (0x40 bytes): the boot display. */
  screenInfo: 0x000,
  screenInfoSize: 0x40,
  extRamdiskImage: 0x0c0,
  extRamdiskSize: 0x0c4,
  extCmdLinePtr: 0x0c8,
  e820Entries: 0x1e8,
  setupHeader: 0x1f1,
  setupSects: 0x1f1,
  vidMode: 0x1fa,
  jump: 0x200,
  magic: 0x202,
  version: 0x206,
  typeOfLoader: 0x210,
  loadflags: 0x211,
  code32Start: 0x214,
  ramdiskImage: 0x218,
  ramdiskSize: 0x21c,
  heapEndPtr: 0x224,
  cmdLinePtr: 0x228,
  initrdAddrMax: 0x22c,
  xloadflags: 0x236,
  cmdlineSize: 0x238,
  payloadOffset: 0x248,
  payloadLength: 0x24c,
  e820Table: 0x2d0,
  e820Max: 128,
  size: 0x1000,
} as const;

const HDRS = 0x53726448; // "HdrS"
const LOADED_HIGH = 0x01;
const CAN_USE_HEAP = 0x80;
const XLF_KERNEL_64 = 0x01;
const LOADER_UNDEFINED = 0xff;
/** Where the protected-mode kernel goes (the protocol's default code32_start). */
export const BZIMAGE_LOAD = 0x100000;

export interface BzImageOptions {
  readonly cmdline: string;
  readonly initrd?: Uint8Array;
  readonly e820: readonly E820Entry[];
  /**
   * "guest" (the boot protocol proper): the kernel's own decompressor runs from the 64-bit entry at
   * code32_start + 0x200. "host" (default): the VMM decompresses the payload (gzip or LZ4 here, XZ through
   * `vmlinux` from decompressPayloadAsync) and enters the kernel ELF at its entry point with the same
   * boot_params, which is what the decompressor would do at its end; on hosts whose KVM emulates every
   * instruction this saves minutes. Other payload formats, and images whose header gives no payload (memtest86+),
   * fall back to "guest".
   */
  readonly decompress?: "host" | "guest";
  /** The payload already decompressed on the host (decompressPayloadAsync), for formats only decoded async. */
  readonly vmlinux?: Uint8Array;
  /**
   * The 64 bytes of struct screen_info describing a framebuffer the kernel may use before any display driver
   * (vesafb, simplefb through sysfb), placed at offset 0 of boot_params. Without it screen_info stays zero.
   */
  readonly screenInfo?: Uint8Array;
}

export interface SetupHeader {
  readonly version: number;
  readonly setupSects: number;
  readonly xloadflags: number;
  readonly cmdlineSize: number;
  readonly initrdAddrMax: number;
  /** Length of the header bytes to copy into boot_params (from 0x1f1). */
  readonly headerLength: number;
  /** The compressed kernel inside the protected-mode part (offset from its start, length). */
  readonly payloadOffset: number;
  readonly payloadLength: number;
}

function bad(why: string): never {
  throw new ConfigurationError(`bzImage: ${why}`);
}

export function parseSetupHeader(image: Uint8Array): SetupHeader {
  if (image.length < 0x400) bad("file is too short for a setup header");
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (view.getUint32(BootParams.magic, true) !== HDRS) bad("no HdrS signature at 0x202 (not a Linux bzImage)");
  const version = view.getUint16(BootParams.version, true);
  if (version < 0x20c) bad(`boot protocol ${version >> 8}.${version & 0xff} is too old (need 2.12 for the 64-bit entry)`);
  const xloadflags = view.getUint16(BootParams.xloadflags, true);
  if (!(xloadflags & XLF_KERNEL_64)) bad("kernel has no 64-bit entry point (XLF_KERNEL_64 clear)");
  const setupSects = image[BootParams.setupSects] || 4;
  if ((setupSects + 1) * 512 >= image.length) bad("setup sectors extend past the end of the file");
  const headerLength = BootParams.magic + image[BootParams.jump + 1]! - BootParams.setupHeader;
  return {
    version,
    setupSects,
    xloadflags,
    cmdlineSize: view.getUint32(BootParams.cmdlineSize, true),
    initrdAddrMax: view.getUint32(BootParams.initrdAddrMax, true),
    headerLength,
    payloadOffset: view.getUint32(BootParams.payloadOffset, true),
    payloadLength: view.getUint32(BootParams.payloadLength, true),
  };
}

export type PayloadFormat = "gzip" | "lz4" | "xz" | "zstd" | "lzma" | "bzip2" | "lzo" | "unknown";

const MAGICS: readonly [PayloadFormat, readonly number[]][] = [
  ["gzip", [0x1f, 0x8b]],
  ["lz4", [0x02, 0x21, 0x4c, 0x18]],
  ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
  ["lzma", [0x5d, 0x00, 0x00]],
  ["bzip2", [0x42, 0x5a, 0x68]],
  ["lzo", [0x89, 0x4c, 0x5a, 0x4f]],
];

export function payloadFormat(payload: Uint8Array): PayloadFormat {
  for (const [name, magic] of MAGICS) if (magic.every((b, i) => payload[i] === b)) return name;
  return "unknown";
}

/**
 * The compressed kernel inside the protected-mode part, or undefined when the setup header gives none. The
 * boot protocol makes payload_offset/payload_length hints for the in-kernel decompressor: an image that is not
 * a compressed Linux kernel (memtest86+) leaves them 0 and is simply entered.
 */
export function payloadOf(image: Uint8Array, hdr: SetupHeader = parseSetupHeader(image)): Uint8Array | undefined {
  if (hdr.payloadLength === 0) return undefined;
  const start = (hdr.setupSects + 1) * 512 + hdr.payloadOffset;
  if (hdr.payloadLength < 8 || start + hdr.payloadLength > image.length) bad("payload lies outside the file");
  return image.subarray(start, start + hdr.payloadLength);
}

/** The payload's last 4 bytes: the decompressed size. */
const payloadSize = (payload: Uint8Array) => new DataView(payload.buffer, payload.byteOffset).getUint32(payload.length - 4, true);

/**
 * The kernel ELF (vmlinux) inside a bzImage, decompressed on the host, or undefined when there is no payload or
 * its format is not one decoded synchronously (gzip, LZ4; XZ needs decompressPayloadAsync).
 */
export function decompressPayload(image: Uint8Array, hdr: SetupHeader = parseSetupHeader(image)): Uint8Array | undefined {
  const payload = payloadOf(image, hdr);
  if (!payload) return undefined;
  try {
    switch (payloadFormat(payload)) {
      case "gzip":
        return new Uint8Array(zlib().gunzipSync(payload.subarray(0, payload.length - 4)));
      case "lz4":
        return lz4DecodeLegacy(payload.subarray(0, payload.length - 4), payloadSize(payload));
      default:
        return undefined;
    }
  } catch (e) {
    bad(`the compressed kernel cannot be decoded: ${(e as Error).message}`);
  }
}

/** decompressPayload, plus the formats decoded asynchronously (XZ, through WebAssembly). */
export async function decompressPayloadAsync(image: Uint8Array, hdr: SetupHeader = parseSetupHeader(image)): Promise<Uint8Array | undefined> {
  const payload = payloadOf(image, hdr);
  if (!payload || payloadFormat(payload) !== "xz") return decompressPayload(image, hdr);
  let vmlinux: Uint8Array;
  try {
    // The kernel's build appends the decompressed size after the .xz stream.
    vmlinux = await xzDecode(payload.subarray(0, payload.length - 4));
  } catch (e) {
    bad(`the compressed kernel cannot be decoded: ${(e as Error).message}`);
  }
  if (vmlinux.length !== payloadSize(payload)) bad(`the XZ payload decodes to ${vmlinux.length} bytes, not the ${payloadSize(payload)} its trailer says`);
  return vmlinux;
}

/**
 * Loads a Linux bzImage by the x86 boot protocol: the protected-mode kernel at 1 MiB, boot_params with the setup
 * header copied from the image, the command line, an initrd at the top of low RAM, the e820 table and, when a
 * display provides one, screen_info; the boot CPU enters the 64-bit entry (code32_start + 0x200) with RSI
 * pointing at boot_params. Linux starts the other CPUs itself (INIT/SIPI), so there is no AP entry.
 */
export function loadBzImage(memory: GuestMemory, image: Uint8Array, options: BzImageOptions): LoadedImage {
  const hdr = parseSetupHeader(image);
  const kernel = image.subarray((hdr.setupSects + 1) * 512);
  const cmdline = new TextEncoder().encode(options.cmdline);
  if (cmdline.length + 1 > Math.min(hdr.cmdlineSize + 1, Layout.cmdlineMax)) {
    bad(`command line is ${cmdline.length} bytes; the kernel accepts at most ${hdr.cmdlineSize}`);
  }
  if (options.e820.length > BootParams.e820Max) bad(`too many e820 entries (${options.e820.length})`);
  if (options.screenInfo && options.screenInfo.length !== BootParams.screenInfoSize) {
    bad(`screen_info must be ${BootParams.screenInfoSize} bytes (got ${options.screenInfo.length})`);
  }

  place(memory, BZIMAGE_LOAD, kernel, "bzImage protected-mode kernel");
  const bp = memory.view(Layout.bootParams, BootParams.size);
  bp.fill(0);
  if (options.screenInfo) bp.set(options.screenInfo, BootParams.screenInfo);
  bp.set(image.subarray(BootParams.setupHeader, BootParams.setupHeader + hdr.headerLength), BootParams.setupHeader);
  const view = new DataView(bp.buffer, bp.byteOffset, bp.byteLength);
  view.setUint16(BootParams.vidMode, 0xffff, true);
  view.setUint8(BootParams.typeOfLoader, LOADER_UNDEFINED);
  view.setUint8(BootParams.loadflags, view.getUint8(BootParams.loadflags) | LOADED_HIGH | CAN_USE_HEAP);
  view.setUint32(BootParams.code32Start, BZIMAGE_LOAD, true);
  view.setUint16(BootParams.heapEndPtr, 0xfe00, true);

  place(memory, Layout.cmdline, new Uint8Array([...cmdline, 0]), "command line");
  view.setUint32(BootParams.cmdLinePtr, Layout.cmdline, true);

  const segments = [{ gpa: BZIMAGE_LOAD, size: kernel.length }];
  if (options.initrd && options.initrd.length > 0) {
    const lowRamEnd = options.e820.filter((e) => e.type === 1 && e.addr < Layout.fourGiB).reduce((m, e) => Math.max(m, e.addr + e.size), 0);
    const limit = Math.min(lowRamEnd, hdr.initrdAddrMax + 1);
    const at = Math.floor((limit - options.initrd.length) / 4096) * 4096;
    if (at < BZIMAGE_LOAD + kernel.length) bad(`initrd of ${options.initrd.length} bytes does not fit below 0x${limit.toString(16)}`);
    place(memory, at, options.initrd, "initrd");
    view.setUint32(BootParams.ramdiskImage, at, true);
    view.setUint32(BootParams.ramdiskSize, options.initrd.length, true);
    segments.push({ gpa: at, size: options.initrd.length });
  }

  view.setUint8(BootParams.e820Entries, options.e820.length);
  options.e820.forEach((e, i) => {
    const off = BootParams.e820Table + i * 20;
    view.setBigUint64(off, BigInt(e.addr), true);
    view.setBigUint64(off + 8, BigInt(e.size), true);
    view.setUint32(off + 16, e.type, true);
  });

  writeIdentityPaging(memory);
  const vmlinux = options.decompress === "guest" ? undefined : (options.vmlinux ?? decompressPayload(image, hdr));
  if (vmlinux) {
    const elf = parseElf64(vmlinux);
    for (const seg of elf.segments) {
      if (seg.paddr < BZIMAGE_LOAD) bad(`kernel segment at 0x${seg.paddr.toString(16)} lies below 1 MiB`);
      place(memory, seg.paddr, vmlinux.subarray(seg.fileOffset, seg.fileOffset + seg.fileSize), "decompressed kernel");
      for (const part of memory.segments(seg.paddr + seg.fileSize, seg.memSize - seg.fileSize)) part.fill(0);
      segments.push({ gpa: seg.paddr, size: seg.memSize });
    }
    return {
      kind: "bzimage",
      entry: longModeEntry({ rip: elf.entry, rsi: Layout.bootParams }),
      segments,
      note: `kernel decompressed by the VMM; entered at its ELF entry 0x${elf.entry.toString(16)}`,
    };
  }
  return {
    kind: "bzimage",
    entry: longModeEntry({ rip: BZIMAGE_LOAD + 0x200, rsi: Layout.bootParams }),
    segments,
    note:
      hdr.payloadLength === 0
        ? "no compressed payload in the setup header; entered at its 64-bit entry (code32_start + 0x200)"
        : "kernel entered at its 64-bit entry (code32_start + 0x200); it decompresses itself",
  };
}
