// struct vfio_region_info and its capability chain (VFIO_DEVICE_GET_REGION_INFO, VFIO_USER_DEVICE_GET_REGION_INFO).
import { VfioRegionFlags, type VfioMmapArea } from "../backend/backend.js";
import { decodeCapability, decodeCapabilityArray, walkCapabilityChain, type VfioCapabilityEntry } from "./capabilities.js";
import { VfioRegionCap } from "./constants.js";
import { decodeInfo } from "./decode-helpers.js";
import { VfioDecodeError } from "./errors.js";
import { VfioRegionInfoCapSparseMmap, VfioRegionInfoCapType, VfioRegionInfoStruct, VfioRegionSparseMmapArea } from "./structs.js";

export interface DecodedRegionInfo {
  readonly argsz: number;
  /** VfioRegionFlags bits. */
  readonly flags: number;
  readonly index: number;
  readonly capOffset: number;
  readonly size: number;
  /** Where the region starts in the fd to mmap (the device fd, or the fd a vfio-user server sent). */
  readonly offset: number;
  /** argsz is larger than the bytes that came: the capabilities did not fit, ask again with argsz. */
  readonly truncated: boolean;
  /** VFIO_REGION_INFO_CAP_SPARSE_MMAP's areas (zero-sized ones dropped), each inside the region. */
  readonly sparseAreas?: readonly VfioMmapArea[];
  /** VFIO_REGION_INFO_CAP_TYPE. */
  readonly type?: { readonly type: number; readonly subtype: number };
  /** VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: the MSI-X table may be mapped with the rest of the BAR. */
  readonly msixMappable: boolean;
  /** Every capability in the chain, the ones this decoder does not know included. */
  readonly capabilities: readonly VfioCapabilityEntry[];
}

/**
 * A region info request for region `index` in a buffer of `argsz` bytes (the room the reply may fill: sizeof, or
 * more for capabilities). Kernel VFIO takes the whole buffer; vfio-user sends the first sizeof bytes as the request.
 */
export function encodeRegionInfoRequest(index: number, argsz: number = VfioRegionInfoStruct.size): Uint8Array {
  return VfioRegionInfoStruct.encode({ argsz, flags: 0, index, cap_offset: 0, size: 0, offset: 0 }, argsz);
}

/** Decodes a region info reply (the structure and as many capability bytes as came with it). */
export function decodeRegionInfo(bytes: Uint8Array): DecodedRegionInfo {
  const what = "vfio_region_info";
  const info = decodeInfo(VfioRegionInfoStruct, bytes, VfioRegionInfoStruct.size, what);
  const base = {
    argsz: info.argsz,
    flags: info.flags,
    index: info.index,
    capOffset: info.cap_offset,
    size: info.size,
    offset: info.offset,
  };
  const truncated = info.argsz > bytes.length;
  if (truncated || (info.flags & VfioRegionFlags.CAPS) === 0 || info.cap_offset === 0) {
    return { ...base, truncated, msixMappable: false, capabilities: [] };
  }
  const whole = bytes.subarray(0, info.argsz);
  const regionWhat = `${what} of region ${info.index}`;
  const capabilities = walkCapabilityChain(whole, info.cap_offset, VfioRegionInfoStruct.size, regionWhat);
  let sparseAreas: VfioMmapArea[] | undefined;
  let type: { type: number; subtype: number } | undefined;
  for (const entry of capabilities) {
    if (entry.id === VfioRegionCap.SPARSE_MMAP) {
      if (sparseAreas) throw new VfioDecodeError(`${regionWhat}: two sparse mmap capabilities`);
      sparseAreas = decodeSparseAreas(whole, entry, info.size, regionWhat);
    } else if (entry.id === VfioRegionCap.TYPE) {
      const cap = decodeCapability(whole, entry, VfioRegionInfoCapType, regionWhat);
      type = { type: cap.type, subtype: cap.subtype };
    }
  }
  const msixMappable = capabilities.some((entry) => entry.id === VfioRegionCap.MSIX_MAPPABLE);
  return { ...base, truncated, capabilities, msixMappable, ...(sparseAreas ? { sparseAreas } : {}), ...(type ? { type } : {}) };
}

function decodeSparseAreas(info: Uint8Array, entry: VfioCapabilityEntry, regionSize: number, what: string): VfioMmapArea[] {
  const cap = decodeCapability(info, entry, VfioRegionInfoCapSparseMmap, what);
  const areas = decodeCapabilityArray(info, entry, VfioRegionInfoCapSparseMmap.flexibleOffset!, cap.nr_areas, VfioRegionSparseMmapArea, what);
  for (const area of areas) {
    if (area.offset > regionSize || area.size > regionSize - area.offset) {
      throw new VfioDecodeError(
        `${what}: sparse mmap area [0x${area.offset.toString(16)}, +0x${area.size.toString(16)}) lies outside the 0x${regionSize.toString(16)}-byte region`,
      );
    }
  }
  return areas.filter((area) => area.size > 0).map((area) => ({ offset: area.offset, size: area.size }));
}
