/** Device status bits (virtio 1.x, 2.1). */
export const Status = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const;

/** Transport and ring feature bits (virtio 1.x, 6), as bit numbers. */
export const FeatureBit = {
  NOTIFY_ON_EMPTY: 24,
  ANY_LAYOUT: 27,
  RING_INDIRECT_DESC: 28,
  RING_EVENT_IDX: 29,
  VERSION_1: 32,
} as const;

export const bit = (n: number): bigint => 1n << BigInt(n);

/** Virtio device types (virtio 1.x, 5). */
export const VirtioType = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  ENTROPY: 4,
} as const;
export type VirtioDeviceTypeId = (typeof VirtioType)[keyof typeof VirtioType];

/** "No MSI-X vector": interrupts for this source are not delivered by MSI-X. */
export const NO_VECTOR = 0xffff;

/** ISR status bits. */
export const Isr = { QUEUE: 1, CONFIG: 2 } as const;

export const VIRTIO_VENDOR_ID = 0x1af4;

/** Per-type PCI identity: transitional device id, and class code (reference.md section 10). */
export const PCI_IDENTITY: Readonly<Record<VirtioDeviceTypeId, { transitionalId: number; classCode: number }>> = {
  [VirtioType.NET]: { transitionalId: 0x1000, classCode: 0x020000 },
  [VirtioType.BLOCK]: { transitionalId: 0x1001, classCode: 0x018000 },
  [VirtioType.CONSOLE]: { transitionalId: 0x1003, classCode: 0x078000 },
  [VirtioType.ENTROPY]: { transitionalId: 0x1004, classCode: 0xff0000 },
};

/** The modern (virtio 1.x only) PCI device id of a device type. */
export const modernDeviceId = (type: number): number => 0x1040 + type;
