// linux/vfio.h's structures, member for member (names as in the header). Offsets and sizes are computed by CStruct
// from these lists; `vfioStructLayouts` is the table a compiled test compares with the system header.
import { CStruct, type StructLayout } from "./struct.js";

export const VfioInfoCapHeader = new CStruct("vfio_info_cap_header", { id: "u16", version: "u16", next: "u32" });

export const VfioGroupStatus = new CStruct("vfio_group_status", { argsz: "u32", flags: "u32" });

export const VfioDeviceInfoStruct = new CStruct("vfio_device_info", {
  argsz: "u32",
  flags: "u32",
  num_regions: "u32",
  num_irqs: "u32",
  cap_offset: "u32",
});

export const VfioRegionInfoStruct = new CStruct("vfio_region_info", {
  argsz: "u32",
  flags: "u32",
  index: "u32",
  cap_offset: "u32",
  size: "u64",
  offset: "u64",
});

export const VfioRegionSparseMmapArea = new CStruct("vfio_region_sparse_mmap_area", { offset: "u64", size: "u64" });

export const VfioRegionInfoCapSparseMmap = new CStruct(
  "vfio_region_info_cap_sparse_mmap",
  { header: VfioInfoCapHeader, nr_areas: "u32", reserved: "u32" },
  { name: "areas", element: VfioRegionSparseMmapArea },
);

export const VfioRegionInfoCapType = new CStruct("vfio_region_info_cap_type", {
  header: VfioInfoCapHeader,
  type: "u32",
  subtype: "u32",
});

export const VfioIrqInfoStruct = new CStruct("vfio_irq_info", { argsz: "u32", flags: "u32", index: "u32", count: "u32" });

export const VfioIrqSetStruct = new CStruct(
  "vfio_irq_set",
  { argsz: "u32", flags: "u32", index: "u32", start: "u32", count: "u32" },
  { name: "data", element: "u8" },
);

export const VfioIommuType1Info = new CStruct("vfio_iommu_type1_info", {
  argsz: "u32",
  flags: "u32",
  iova_pgsizes: "u64big",
  cap_offset: "u32",
});

export const VfioIovaRange = new CStruct("vfio_iova_range", { start: "u64big", end: "u64big" });

export const VfioIommuType1InfoCapIovaRange = new CStruct(
  "vfio_iommu_type1_info_cap_iova_range",
  { header: VfioInfoCapHeader, nr_iovas: "u32", reserved: "u32" },
  { name: "iova_ranges", element: VfioIovaRange },
);

export const VfioIommuType1InfoCapMigration = new CStruct("vfio_iommu_type1_info_cap_migration", {
  header: VfioInfoCapHeader,
  flags: "u32",
  pgsize_bitmap: "u64big",
  max_dirty_bitmap_size: "u64",
});

export const VfioIommuType1InfoDmaAvail = new CStruct("vfio_iommu_type1_info_dma_avail", {
  header: VfioInfoCapHeader,
  avail: "u32",
});

export const VfioIommuType1DmaMap = new CStruct("vfio_iommu_type1_dma_map", {
  argsz: "u32",
  flags: "u32",
  vaddr: "u64big",
  iova: "u64",
  size: "u64",
});

export const VfioIommuType1DmaUnmap = new CStruct(
  "vfio_iommu_type1_dma_unmap",
  { argsz: "u32", flags: "u32", iova: "u64", size: "u64" },
  { name: "data", element: "u8" },
);

/** Every structure above with its sizeof and member offsets, for comparison with <linux/vfio.h>. */
export const vfioStructLayouts: readonly StructLayout[] = [
  VfioInfoCapHeader,
  VfioGroupStatus,
  VfioDeviceInfoStruct,
  VfioRegionInfoStruct,
  VfioRegionSparseMmapArea,
  VfioRegionInfoCapSparseMmap,
  VfioRegionInfoCapType,
  VfioIrqInfoStruct,
  VfioIrqSetStruct,
  VfioIommuType1Info,
  VfioIovaRange,
  VfioIommuType1InfoCapIovaRange,
  VfioIommuType1InfoCapMigration,
  VfioIommuType1InfoDmaAvail,
  VfioIommuType1DmaMap,
  VfioIommuType1DmaUnmap,
].map((struct) => struct.layout());
