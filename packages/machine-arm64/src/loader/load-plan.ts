import { ConfigurationError } from "@vmm/core";
import type { Arm64MemoryMap } from "../memory-map.js";
import { alignUp, formatRange, hex, rangeEnd, type AddressRange } from "../ranges.js";
import type { Arm64Image } from "./image-header.js";

// Where the kernel, the initrd and the DTB go in RAM, and how the boot vCPU starts (booting.rst):
// - the Image at a 2 MiB aligned base + text_offset, with image_size bytes free from there; the base is RAM's
//   (the kernel cannot use memory below it, and flags bit 3 clear asks for it to be as low as possible);
// - the initrd after the kernel, inside a 1 GiB aligned window of at most 32 GiB that also covers the kernel;
// - the DTB on a 2 MiB boundary after that (8-byte alignment is the minimum; a 2 MiB block of its own keeps it out of
//   any region mapped with other attributes), at most 2 MiB;
// - entry at the Image's first byte with x0 = the DTB's address and x1-x3 = 0 (the vCPU setup does the rest:
//   EL1h, interrupts masked, MMU off).

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const KERNEL_BASE_ALIGNMENT = 2 * MIB;
const INITRD_ALIGNMENT = 64 * 1024;
export const DTB_ALIGNMENT = 2 * MIB;
export const DTB_MAX_SIZE = 2 * MIB;
const INITRD_WINDOW = 32 * GIB;

export interface KernelPlacement {
  /** Where the Image's bytes go. */
  readonly gpa: number;
  readonly bytes: Uint8Array;
  /** image_size: the span from `gpa` the kernel may use. */
  readonly imageSize: number;
}

export interface KernelAndInitrdPlacement {
  readonly kernel: KernelPlacement;
  readonly initrd?: AddressRange;
}

export interface Arm64LoadPlan extends KernelAndInitrdPlacement {
  readonly dtb: AddressRange;
  /** The boot vCPU's PC and x0 (x1-x3 are 0); secondary vCPUs start through PSCI CPU_ON. */
  readonly entry: { readonly pc: number; readonly x0: number };
}

function needRam(what: string, range: AddressRange, map: Arm64MemoryMap): void {
  if (rangeEnd(range) > rangeEnd(map.ram)) {
    throw new ConfigurationError(`${what} needs ${formatRange(range)}, past the end of RAM ${formatRange(map.ram)}; give the VM more memory`);
  }
}

/** Places the kernel and the initrd (of `initrdSize` bytes); the DTB comes after, once its size is known. */
export function placeKernelAndInitrd(map: Arm64MemoryMap, image: Arm64Image, initrdSize?: number): KernelAndInitrdPlacement {
  const base = alignUp(map.ram.base, KERNEL_BASE_ALIGNMENT);
  const kernel = { gpa: base + image.header.textOffset, bytes: image.bytes, imageSize: image.header.imageSize };
  needRam(`the kernel (image_size ${hex(kernel.imageSize)} at text_offset ${hex(image.header.textOffset)})`, { base: kernel.gpa, size: kernel.imageSize }, map);
  if (initrdSize === undefined) return { kernel };
  const initrd = { base: alignUp(kernel.gpa + kernel.imageSize, INITRD_ALIGNMENT), size: initrdSize };
  needRam(`the initrd (${initrdSize} bytes, after the kernel)`, initrd, map);
  const window = Math.floor(base / GIB) * GIB;
  if (rangeEnd(initrd) - window > INITRD_WINDOW) {
    throw new ConfigurationError(`the initrd ${formatRange(initrd)} and the kernel do not fit in one 1 GiB aligned 32 GiB window (from ${hex(window)}), as arm64 Linux requires`);
  }
  return { kernel, initrd };
}

/** Adds the DTB (of `dtbSize` bytes) after the kernel and initrd, and the entry state. */
export function completeLoadPlan(map: Arm64MemoryMap, placed: KernelAndInitrdPlacement, dtbSize: number): Arm64LoadPlan {
  if (dtbSize > DTB_MAX_SIZE) throw new ConfigurationError(`the devicetree is ${dtbSize} bytes; arm64 Linux takes at most ${DTB_MAX_SIZE}`);
  const after = placed.initrd ? rangeEnd(placed.initrd) : placed.kernel.gpa + placed.kernel.imageSize;
  const dtb = { base: alignUp(after, DTB_ALIGNMENT), size: dtbSize };
  needRam(`the devicetree (${dtbSize} bytes, on the 2 MiB boundary after the ${placed.initrd ? "initrd" : "kernel"})`, dtb, map);
  return { ...placed, dtb, entry: { pc: placed.kernel.gpa, x0: dtb.base } };
}
