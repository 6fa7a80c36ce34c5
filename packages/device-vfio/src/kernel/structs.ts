// The structures of the iommufd cdev path (linux/vfio.h's bind/attach, linux/iommufd.h's IOAS calls), which only
// kernel VFIO uses; the rest of linux/vfio.h is in src/uapi. Described with the same CStruct so one compiled test
// (kernel-abi.test.ts) checks them all against the system headers.
import { CStruct } from "../uapi/struct.js";

/** VFIO_DEVICE_BIND_IOMMUFD: binds a cdev device fd to an iommufd; out_devid names the bond. */
export const vfioDeviceBindIommufd = new CStruct("vfio_device_bind_iommufd", {
  argsz: "u32",
  flags: "u32",
  iommufd: "s32",
  out_devid: "u32",
});

/** VFIO_DEVICE_ATTACH_IOMMUFD_PT: attaches the device to an IOAS (or a hardware page table). */
export const vfioDeviceAttachIommufdPt = new CStruct("vfio_device_attach_iommufd_pt", {
  argsz: "u32",
  flags: "u32",
  pt_id: "u32",
});

/** IOMMU_DESTROY. */
export const iommuDestroy = new CStruct("iommu_destroy", { size: "u32", id: "u32" });

/** IOMMU_IOAS_ALLOC. */
export const iommuIoasAlloc = new CStruct("iommu_ioas_alloc", { size: "u32", flags: "u32", out_ioas_id: "u32" });

/** IOMMU_IOAS_MAP: maps user_va..+length at iova (FIXED_IOVA) into an IOAS. */
export const iommuIoasMap = new CStruct("iommu_ioas_map", {
  size: "u32",
  flags: "u32",
  ioas_id: "u32",
  __reserved: "u32",
  user_va: "u64big",
  length: "u64",
  iova: "u64",
});

/** IOMMU_IOAS_UNMAP. */
export const iommuIoasUnmap = new CStruct("iommu_ioas_unmap", {
  size: "u32",
  ioas_id: "u32",
  iova: "u64",
  length: "u64",
});

/** linux/iommufd.h enum iommufd_ioas_map_flags. */
export const IommuIoasMapFlags = { FIXED_IOVA: 1 << 0, WRITEABLE: 1 << 1, READABLE: 1 << 2 } as const;

/** The kernel-only structures and the header that declares each, for the ABI test. */
export const kernelStructs: readonly { readonly header: "vfio" | "iommufd"; readonly struct: CStruct<any> }[] = [
  { header: "vfio", struct: vfioDeviceBindIommufd },
  { header: "vfio", struct: vfioDeviceAttachIommufdPt },
  { header: "iommufd", struct: iommuDestroy },
  { header: "iommufd", struct: iommuIoasAlloc },
  { header: "iommufd", struct: iommuIoasMap },
  { header: "iommufd", struct: iommuIoasUnmap },
];
