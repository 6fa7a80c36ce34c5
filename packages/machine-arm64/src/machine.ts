import { ConfigurationError } from "@vmm/core";
import { buildArm64Dtb } from "./fdt/machine-fdt.js";
import type { GicVersion } from "./gic.js";
import { loadArm64Image } from "./loader/image-header.js";
import { completeLoadPlan, placeKernelAndInitrd, type Arm64LoadPlan } from "./loader/load-plan.js";
import { buildArm64MemoryMap, type Arm64MemoryMap } from "./memory-map.js";

// Options -> memory map, DTB and load plan: everything `vmm run --arch arm64` needs before it opens KVM, and all
// that `--dump-dtb FILE` writes.

export interface Arm64MachineOptions {
  /** RAM in bytes (a whole number of MiB, at least 16 MiB). */
  readonly ramSize: number;
  /** `--mem-base`: RAM's guest-physical base, 2 MiB aligned; default 2 GiB. */
  readonly ramBase?: number;
  readonly cpus: number;
  /** Default "v3" (with an ITS); "v2" has a GICv2m frame for MSIs and at most 8 vCPUs. */
  readonly gic?: GicVersion;
  /** Guest physical address bits the VM is created with; default 40 (KVM's default IPA size). */
  readonly ipaBits?: number;
  /** The kernel file: an arm64 Image or Image.gz. Without it there is no load plan (a DTB dump still works). */
  readonly kernel?: Uint8Array;
  /** The initrd's bytes (needs a kernel). */
  readonly initrd?: Uint8Array;
  /** The kernel command line (/chosen/bootargs). */
  readonly cmdline?: string;
}

export interface Arm64Machine {
  readonly memoryMap: Arm64MemoryMap;
  /** The devicetree blob to place at `loadPlan.dtb` (and what --dump-dtb writes). */
  readonly dtb: Uint8Array;
  /** Present when a kernel was given. */
  readonly loadPlan?: Arm64LoadPlan;
  /** The initrd's bytes, to copy to `loadPlan.initrd`. */
  readonly initrd?: Uint8Array;
}

export function describeArm64Machine(o: Arm64MachineOptions): Arm64Machine {
  const memoryMap = buildArm64MemoryMap(o);
  if (!o.kernel) {
    if (o.initrd) throw new ConfigurationError("an initrd needs a kernel to go with it");
    const dtb = buildArm64Dtb({ map: memoryMap, cpus: o.cpus, bootargs: o.cmdline });
    return { memoryMap, dtb };
  }
  const image = loadArm64Image(o.kernel, memoryMap.ram.size);
  const placed = placeKernelAndInitrd(memoryMap, image, o.initrd?.length);
  const dtb = buildArm64Dtb({ map: memoryMap, cpus: o.cpus, bootargs: o.cmdline, initrd: placed.initrd });
  return { memoryMap, dtb, loadPlan: completeLoadPlan(memoryMap, placed, dtb.length), initrd: o.initrd };
}
