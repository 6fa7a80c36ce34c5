// Numbers of the vfio-user protocol (QEMU docs/interop/vfio-user.rst) and of the linux/vfio.h structures it
// carries. Written from the specifications; all values are the wire's.

/** Command numbers of the message header. */
export const Command = {
  VERSION: 1,
  DMA_MAP: 2,
  DMA_UNMAP: 3,
  DEVICE_GET_INFO: 4,
  DEVICE_GET_REGION_INFO: 5,
  DEVICE_GET_REGION_IO_FDS: 6,
  DEVICE_GET_IRQ_INFO: 7,
  DEVICE_SET_IRQS: 8,
  REGION_READ: 9,
  REGION_WRITE: 10,
  DMA_READ: 11,
  DMA_WRITE: 12,
  DEVICE_RESET: 13,
  REGION_WRITE_MULTI: 15,
  DEVICE_FEATURE: 16,
  MIG_DATA_READ: 17,
  MIG_DATA_WRITE: 18,
} as const;

export type CommandName = keyof typeof Command;

const commandNames = new Map<number, CommandName>(Object.entries(Command).map(([name, value]) => [value, name as CommandName]));

/** The name of a command number, for logs ("#14" when the spec has none). */
export function commandName(command: number): string {
  return commandNames.get(command) ?? `#${command}`;
}

/** The 16-byte header every message starts with. */
export const HEADER_SIZE = 16;

/** Header flags: bits 0-3 are the type, bit 4 no_reply, bit 5 error. */
export const MessageFlags = {
  TYPE_MASK: 0xf,
  TYPE_COMMAND: 0x0,
  TYPE_REPLY: 0x1,
  NO_REPLY: 0x10,
  ERROR: 0x20,
} as const;

/** The protocol version this server speaks. */
export const PROTOCOL_MAJOR = 0;
export const PROTOCOL_MINOR = 1;

/** vfio_device_info.flags */
export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;

/** vfio_region_info.flags */
export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
export const VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;

/** vfio_info_cap_header.id of struct vfio_region_info_cap_sparse_mmap, and its version. */
export const VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;
export const VFIO_REGION_INFO_CAP_SPARSE_MMAP_VERSION = 1;

/** Region indexes of a vfio-pci device. */
export const PciRegion = {
  BAR0: 0,
  BAR5: 5,
  ROM: 6,
  CONFIG: 7,
  VGA: 8,
  /** VFIO_PCI_NUM_REGIONS */
  COUNT: 9,
} as const;

/** IRQ indexes of a vfio-pci device this server offers (ERR and REQ are not offered). */
export const PciIrq = {
  INTX: 0,
  MSI: 1,
  MSIX: 2,
  COUNT: 3,
} as const;

/** vfio_irq_info.flags */
export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;

/** vfio_irq_set.flags */
export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;
export const VFIO_IRQ_SET_DATA_TYPE_MASK = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD;
export const VFIO_IRQ_SET_ACTION_TYPE_MASK = VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;

/** VFIO_USER_DMA_MAP flags */
export const DMA_MAP_FLAG_READ = 1 << 0;
export const DMA_MAP_FLAG_WRITE = 1 << 1;

/** VFIO_USER_DMA_UNMAP flags: linux/vfio.h's VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP (not supported) and _ALL. */
export const DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
export const DMA_UNMAP_FLAG_ALL = 1 << 1;

/** Linux errno values carried in error replies. */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENOSPC: 28,
  ERANGE: 34,
  ENOSYS: 38,
  E2BIG: 7,
  ENOTSUP: 95,
} as const;

/** The page size of DMA maps and mmappable areas (pgsizes). */
export const PAGE_SIZE = 4096;
