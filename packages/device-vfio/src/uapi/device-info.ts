// struct vfio_device_info (VFIO_DEVICE_GET_INFO, VFIO_USER_DEVICE_GET_INFO).
import { VFIO_DEVICE_FLAGS_CAPS } from "./constants.js";
import { decodeInfo } from "./decode-helpers.js";
import { VfioDeviceInfoStruct } from "./structs.js";

export interface DecodedDeviceInfo {
  readonly argsz: number;
  /** VfioDeviceFlags bits (and VFIO_DEVICE_FLAGS_CAPS and the non-PCI bus bits). */
  readonly flags: number;
  readonly numRegions: number;
  readonly numIrqs: number;
  /** The first device capability (VFIO_DEVICE_FLAGS_CAPS); 0 when there is none or argsz does not reach it. */
  readonly capOffset: number;
}

/** The minimum argsz of a device info request or reply (the kernel's minsz: up to num_irqs). */
export const DEVICE_INFO_MIN_SIZE = VfioDeviceInfoStruct.endOf("num_irqs");

/** A device info request whose argsz is `argsz`: sizeof for kernel VFIO, 16 for vfio-user (the spec's payload). */
export function encodeDeviceInfoRequest(argsz: number = VfioDeviceInfoStruct.size): Uint8Array {
  if (argsz < DEVICE_INFO_MIN_SIZE) throw new RangeError(`a device info request needs argsz >= ${DEVICE_INFO_MIN_SIZE}, not ${argsz}`);
  const bytes = VfioDeviceInfoStruct.encode({ argsz, flags: 0, num_regions: 0, num_irqs: 0, cap_offset: 0 }, Math.max(argsz, VfioDeviceInfoStruct.size));
  return bytes.subarray(0, argsz);
}

export function decodeDeviceInfo(bytes: Uint8Array): DecodedDeviceInfo {
  const info = decodeInfo(VfioDeviceInfoStruct, bytes, DEVICE_INFO_MIN_SIZE, "vfio_device_info");
  const hasCaps = (info.flags & VFIO_DEVICE_FLAGS_CAPS) !== 0 && Math.min(info.argsz, bytes.length) >= VfioDeviceInfoStruct.endOf("cap_offset");
  return { argsz: info.argsz, flags: info.flags, numRegions: info.num_regions, numIrqs: info.num_irqs, capOffset: hasCaps ? info.cap_offset : 0 };
}
