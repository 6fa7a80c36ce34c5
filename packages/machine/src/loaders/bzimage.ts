import { ConfigurationError, type GuestMemory } from "@vmm/core";
import { longModeEntry, writeIdentityPaging } from "../x86_64/cpu-state.js";
import { Layout, type E820Entry } from "../x86_64/memory-map.js";
import { place, type LoadedImage } from "./image.js";

/** Offsets in the x86 boot protocol's boot_params ("zero page") and setup header (Documentation/x86/boot). */
export const BootParams = {
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
}

export interface SetupHeader {
  readonly version: number;
  readonly setupSects: number;
  readonly xloadflags: number;
  readonly cmdlineSize: number;
  readonly initrdAddrMax: number;
  /** Length of the header bytes to copy into boot_params (from 0x1f1). */
  readonly headerLength: number;
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
  };
}

/**
 * Loads a Linux bzImage by the x86 boot protocol: the protected-mode kernel at 1 MiB, boot_params with the setup
 * header copied from the image, the command line, an initrd at the top of low RAM, and the e820 table; the boot
 * CPU enters the 64-bit entry (code32_start + 0x200) with RSI pointing at boot_params. Linux starts the other
 * CPUs itself (INIT/SIPI), so there is no AP entry.
 */
export function loadBzImage(memory: GuestMemory, image: Uint8Array, options: BzImageOptions): LoadedImage {
  const hdr = parseSetupHeader(image);
  const kernel = image.subarray((hdr.setupSects + 1) * 512);
  const cmdline = new TextEncoder().encode(options.cmdline);
  if (cmdline.length + 1 > Math.min(hdr.cmdlineSize + 1, Layout.cmdlineMax)) {
    bad(`command line is ${cmdline.length} bytes; the kernel accepts at most ${hdr.cmdlineSize}`);
  }
  if (options.e820.length > BootParams.e820Max) bad(`too many e820 entries (${options.e820.length})`);

  place(memory, BZIMAGE_LOAD, kernel, "bzImage protected-mode kernel");
  const bp = memory.view(Layout.bootParams, BootParams.size);
  bp.fill(0);
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
  return {
    kind: "bzimage",
    entry: longModeEntry({ rip: BZIMAGE_LOAD + 0x200, rsi: Layout.bootParams }),
    segments,
  };
}
