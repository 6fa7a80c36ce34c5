// Type1 IOMMU DMA mapping (VFIO_IOMMU_MAP_DMA / UNMAP_DMA) and the IOMMU's info (VFIO_IOMMU_GET_INFO).
import { decodeCapability, decodeCapabilityArray, walkCapabilityChain, type VfioCapabilityEntry } from "./capabilities.js";
import { VfioDmaMapFlags, VfioIommuCap, VfioIommuInfoFlags } from "./constants.js";
import { decodeInfo } from "./decode-helpers.js";
import { VfioDecodeError } from "./errors.js";
import {
  VfioIommuType1DmaMap,
  VfioIommuType1DmaUnmap,
  VfioIommuType1Info,
  VfioIommuType1InfoCapIovaRange,
  VfioIommuType1InfoCapMigration,
  VfioIommuType1InfoDmaAvail,
  VfioIovaRange,
} from "./structs.js";

export interface Type1DmaMap {
  /** The address of the memory in this process (host-io bufferAddress). */
  readonly vaddr: bigint;
  readonly iova: number;
  readonly size: number;
  readonly readable: boolean;
  readonly writable: boolean;
}

export function encodeType1DmaMap(map: Type1DmaMap): Uint8Array {
  const flags = (map.readable ? VfioDmaMapFlags.READ : 0) | (map.writable ? VfioDmaMapFlags.WRITE : 0);
  return VfioIommuType1DmaMap.encode({ argsz: VfioIommuType1DmaMap.size, flags, vaddr: map.vaddr, iova: map.iova, size: map.size });
}

/** An unmap request; `flags` are VfioDmaUnmapFlags (0 for a plain unmap). */
export function encodeType1DmaUnmap(iova: number, size: number, flags = 0): Uint8Array {
  return VfioIommuType1DmaUnmap.encode({ argsz: VfioIommuType1DmaUnmap.size, flags, iova, size });
}

/** The unmap structure after the ioctl: `size` is what the kernel unmapped. */
export function decodeType1DmaUnmap(bytes: Uint8Array): { readonly flags: number; readonly iova: number; readonly size: number } {
  const unmap = decodeInfo(VfioIommuType1DmaUnmap, bytes, VfioIommuType1DmaUnmap.size, "vfio_iommu_type1_dma_unmap");
  return { flags: unmap.flags, iova: unmap.iova, size: unmap.size };
}

export interface DecodedIommuType1Info {
  readonly argsz: number;
  /** VfioIommuInfoFlags bits. */
  readonly flags: number;
  /** Supported IOMMU page sizes (VFIO_IOMMU_INFO_PGSIZES), a bitmap. */
  readonly iovaPgsizes?: bigint;
  /** argsz is larger than the bytes that came: the capabilities did not fit, ask again with argsz. */
  readonly truncated: boolean;
  /** VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE: the usable IOVA ranges, inclusive ends. */
  readonly iovaRanges?: readonly { readonly start: bigint; readonly end: bigint }[];
  /** VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL: how many more DMA mappings the container takes. */
  readonly dmaAvail?: number;
  readonly migration?: { readonly flags: number; readonly pgsizeBitmap: bigint; readonly maxDirtyBitmapSize: number };
  readonly capabilities: readonly VfioCapabilityEntry[];
}

/** The kernel's minimum: up to iova_pgsizes. */
export const IOMMU_INFO_MIN_SIZE = VfioIommuType1Info.endOf("iova_pgsizes");

/** An IOMMU info request in a buffer of `argsz` bytes (room for capabilities beyond sizeof). */
export function encodeIommuType1InfoRequest(argsz: number = VfioIommuType1Info.size): Uint8Array {
  return VfioIommuType1Info.encode({ argsz, flags: 0, iova_pgsizes: 0n, cap_offset: 0 }, argsz);
}

export function decodeIommuType1Info(bytes: Uint8Array): DecodedIommuType1Info {
  const what = "vfio_iommu_type1_info";
  const info = decodeInfo(VfioIommuType1Info, bytes, IOMMU_INFO_MIN_SIZE, what);
  const base = {
    argsz: info.argsz,
    flags: info.flags,
    ...((info.flags & VfioIommuInfoFlags.PGSIZES) !== 0 ? { iovaPgsizes: info.iova_pgsizes } : {}),
  };
  const truncated = info.argsz > bytes.length;
  const hasCaps = (info.flags & VfioIommuInfoFlags.CAPS) !== 0 && Math.min(info.argsz, bytes.length) >= VfioIommuType1Info.endOf("cap_offset");
  if (truncated || !hasCaps || info.cap_offset === 0) return { ...base, truncated, capabilities: [] };
  const whole = bytes.subarray(0, info.argsz);
  const capabilities = walkCapabilityChain(whole, info.cap_offset, VfioIommuType1Info.size, what);
  let iovaRanges: { start: bigint; end: bigint }[] | undefined;
  let dmaAvail: number | undefined;
  let migration: DecodedIommuType1Info["migration"];
  for (const entry of capabilities) {
    if (entry.id === VfioIommuCap.IOVA_RANGE) {
      const cap = decodeCapability(whole, entry, VfioIommuType1InfoCapIovaRange, what);
      const ranges = decodeCapabilityArray(whole, entry, VfioIommuType1InfoCapIovaRange.flexibleOffset!, cap.nr_iovas, VfioIovaRange, what);
      for (const range of ranges) {
        if (range.end < range.start) throw new VfioDecodeError(`${what}: IOVA range 0x${range.start.toString(16)}-0x${range.end.toString(16)} ends before it starts`);
      }
      iovaRanges = ranges.map((range) => ({ start: range.start, end: range.end }));
    } else if (entry.id === VfioIommuCap.DMA_AVAIL) {
      dmaAvail = decodeCapability(whole, entry, VfioIommuType1InfoDmaAvail, what).avail;
    } else if (entry.id === VfioIommuCap.MIGRATION) {
      const cap = decodeCapability(whole, entry, VfioIommuType1InfoCapMigration, what);
      migration = { flags: cap.flags, pgsizeBitmap: cap.pgsize_bitmap, maxDirtyBitmapSize: cap.max_dirty_bitmap_size };
    }
  }
  return {
    ...base,
    truncated,
    capabilities,
    ...(iovaRanges ? { iovaRanges } : {}),
    ...(dmaAvail !== undefined ? { dmaAvail } : {}),
    ...(migration ? { migration } : {}),
  };
}
