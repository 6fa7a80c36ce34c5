// Request numbers of the kernel-only ioctls that src/uapi's VfioIoctl does not name: the cdev bind/attach calls
// of linux/vfio.h and the iommufd calls of linux/iommufd.h. Both headers define every request with
// _IO(type, nr) (no direction, no size: the structure carries its own argsz/size), so a request is just
// (type << 8) | nr. kernel-abi.test.ts compares each number with the system headers.

/** _IO(type, nr) of asm-generic/ioctl.h: direction and size bits are zero. */
export function ioctlNumber(type: string, nr: number): number {
  return (type.charCodeAt(0) << 8) | nr;
}

/** VFIO_TYPE (';') and VFIO_BASE (100): every VFIO ioctl is _IO(VFIO_TYPE, VFIO_BASE + n). */
const vfio = (n: number) => ioctlNumber(";", 100 + n);
/** IOMMUFD_TYPE (';') with the IOMMUFD_CMD_* numbers (from 0x80). */
const iommufd = (cmd: number) => ioctlNumber(";", cmd);

/** VFIO_DEVICE_*_IOMMUFD* (cdev device fds only). */
export const VfioCdevIoctl = {
  DEVICE_BIND_IOMMUFD: vfio(18),
  DEVICE_ATTACH_IOMMUFD_PT: vfio(19),
  DEVICE_DETACH_IOMMUFD_PT: vfio(20),
} as const;

/** IOMMU_* of linux/iommufd.h (on /dev/iommu fds). */
export const IommufdIoctl = {
  DESTROY: iommufd(0x80),
  IOAS_ALLOC: iommufd(0x81),
  IOAS_MAP: iommufd(0x85),
  IOAS_UNMAP: iommufd(0x86),
} as const;
