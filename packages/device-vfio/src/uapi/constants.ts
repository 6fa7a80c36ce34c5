// linux/vfio.h's numbers that backend.ts does not already name (region and IRQ indexes, device, region and IRQ-info
// flags live there because the device model uses them too).

/** ioctl request numbers: _IO(VFIO_TYPE ';', VFIO_BASE 100 + n); VFIO sizes its structures with argsz instead. */
const vfioIoctl = (n: number) => (0x3b << 8) | (100 + n);

export const VfioIoctl = {
  GET_API_VERSION: vfioIoctl(0),
  CHECK_EXTENSION: vfioIoctl(1),
  SET_IOMMU: vfioIoctl(2),
  GROUP_GET_STATUS: vfioIoctl(3),
  GROUP_SET_CONTAINER: vfioIoctl(4),
  GROUP_UNSET_CONTAINER: vfioIoctl(5),
  GROUP_GET_DEVICE_FD: vfioIoctl(6),
  DEVICE_GET_INFO: vfioIoctl(7),
  DEVICE_GET_REGION_INFO: vfioIoctl(8),
  DEVICE_GET_IRQ_INFO: vfioIoctl(9),
  DEVICE_SET_IRQS: vfioIoctl(10),
  DEVICE_RESET: vfioIoctl(11),
  DEVICE_GET_PCI_HOT_RESET_INFO: vfioIoctl(12),
  DEVICE_PCI_HOT_RESET: vfioIoctl(13),
  DEVICE_FEATURE: vfioIoctl(17),
  IOMMU_GET_INFO: vfioIoctl(12),
  IOMMU_MAP_DMA: vfioIoctl(13),
  IOMMU_UNMAP_DMA: vfioIoctl(14),
  IOMMU_ENABLE: vfioIoctl(15),
  IOMMU_DISABLE: vfioIoctl(16),
} as const;

/** VFIO_API_VERSION: what VFIO_GET_API_VERSION returns. */
export const VFIO_API_VERSION = 0;

/** IOMMU models for VFIO_SET_IOMMU / VFIO_CHECK_EXTENSION, and the extensions that are not models. */
export const VfioIommuType = { TYPE1: 1, TYPE1v2: 3, NOIOMMU: 8 } as const;
export const VfioExtension = { UNMAP_ALL: 9, UPDATE_VADDR: 10 } as const;

/** struct vfio_group_status flags. */
export const VfioGroupFlags = { VIABLE: 1 << 0, CONTAINER_SET: 1 << 1 } as const;

/** VFIO_DEVICE_FLAGS_CAPS: vfio_device_info.cap_offset is valid (the other device flags are in backend.ts). */
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;

/** Capability ids in a vfio_region_info capability chain. */
export const VfioRegionCap = { SPARSE_MMAP: 1, TYPE: 2, MSIX_MAPPABLE: 3 } as const;

/** vfio_region_info_cap_type types (VFIO_REGION_TYPE_*): PCI_VENDOR_TYPE | vendor id, GFX, CCW. */
export const VfioRegionType = { PCI_VENDOR_TYPE: 0x8000_0000, PCI_VENDOR_MASK: 0xffff, GFX: 1, CCW: 2 } as const;

/** struct vfio_irq_set flags: one DATA_* kind and one ACTION_*. */
export const VfioIrqSetFlags = {
  DATA_NONE: 1 << 0,
  DATA_BOOL: 1 << 1,
  DATA_EVENTFD: 1 << 2,
  ACTION_MASK: 1 << 3,
  ACTION_UNMASK: 1 << 4,
  ACTION_TRIGGER: 1 << 5,
} as const;

/** struct vfio_iommu_type1_dma_map flags. */
export const VfioDmaMapFlags = { READ: 1 << 0, WRITE: 1 << 1, VADDR: 1 << 2 } as const;

/** struct vfio_iommu_type1_dma_unmap flags. */
export const VfioDmaUnmapFlags = { GET_DIRTY_BITMAP: 1 << 0, ALL: 1 << 1, VADDR: 1 << 2 } as const;

/** struct vfio_iommu_type1_info flags. */
export const VfioIommuInfoFlags = { PGSIZES: 1 << 0, CAPS: 1 << 1 } as const;

/** Capability ids in a vfio_iommu_type1_info capability chain. */
export const VfioIommuCap = { IOVA_RANGE: 1, MIGRATION: 2, DMA_AVAIL: 3 } as const;
