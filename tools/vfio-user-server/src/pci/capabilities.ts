// Capability structures of the PCI Local Bus, PCI Power Management and PCI Express specifications, as
// declarative field lists: each field's offset inside the capability, width, reset value and write masks. The
// chaining (ID and next pointer, or the extended header) is the layout's job.

export interface CapabilityField {
  /** Offset from the capability's start. */
  readonly at: number;
  readonly width: 1 | 2 | 4;
  readonly value: number;
  readonly writable?: number;
  readonly w1c?: number;
}

export interface CapabilitySpec {
  readonly name: string;
  readonly id: number;
  /** Where it lives in config space (dword aligned). */
  readonly offset: number;
  /** Bytes it occupies, header included. */
  readonly length: number;
  readonly fields: readonly CapabilityField[];
}

export interface ExtendedCapabilitySpec extends CapabilitySpec {
  readonly version: number;
}

export const CapabilityId = { PM: 0x01, VPD: 0x03, MSI: 0x05, PCIE: 0x10, MSIX: 0x11 } as const;
export const ExtendedCapabilityId = { AER: 0x0001, VC: 0x0002, DSN: 0x0003 } as const;

// Power Management (PCI PM 1.2): PMC, then PMCSR (power state RW, PME_En RW, PME_Status RW1C).
export function powerManagement(offset: number, pmc: number, options: { noSoftReset?: boolean } = {}): CapabilitySpec {
  return {
    name: "power-management",
    id: CapabilityId.PM,
    offset,
    length: 8,
    fields: [
      { at: 2, width: 2, value: pmc },
      { at: 4, width: 2, value: options.noSoftReset ? 1 << 3 : 0, writable: 0x0103, w1c: 0x8000 },
      { at: 6, width: 1, value: 0 },
      { at: 7, width: 1, value: 0 },
    ],
  };
}

export interface MsiOptions {
  /** Vectors the function asks for: 1, 2, 4, 8, 16 or 32 (Multiple Message Capable). */
  readonly vectors: number;
  readonly is64Bit: boolean;
  readonly perVectorMask: boolean;
}

/** Where the MSI registers sit, by the capability's flavour. */
export interface MsiLayout {
  readonly control: number;
  readonly addressLow: number;
  readonly addressHigh: number | undefined;
  readonly data: number;
  readonly mask: number | undefined;
  readonly pending: number | undefined;
  readonly length: number;
}

export function msiLayout(options: MsiOptions): MsiLayout {
  const data = options.is64Bit ? 0x0c : 0x08;
  const mask = options.perVectorMask ? data + 4 : undefined;
  return {
    control: 2,
    addressLow: 4,
    addressHigh: options.is64Bit ? 8 : undefined,
    data,
    mask,
    pending: mask === undefined ? undefined : mask + 4,
    length: mask === undefined ? data + 2 : mask + 8,
  };
}

export const MSI_CONTROL_ENABLE = 1 << 0;

export function msi(offset: number, options: MsiOptions): CapabilitySpec {
  const log2 = Math.log2(options.vectors);
  if (!Number.isInteger(log2) || log2 < 0 || log2 > 5) throw new RangeError(`MSI vectors must be a power of two up to 32, not ${options.vectors}`);
  const layout = msiLayout(options);
  const control = (log2 << 1) | (options.is64Bit ? 1 << 7 : 0) | (options.perVectorMask ? 1 << 8 : 0);
  const vectorBits = options.vectors === 32 ? 0xffffffff : (1 << options.vectors) - 1;
  const fields: CapabilityField[] = [
    // Enable and Multiple Message Enable are the client's; the rest says what the function can do.
    { at: layout.control, width: 2, value: control, writable: 0x0071 },
    { at: layout.addressLow, width: 4, value: 0, writable: 0xfffffffc },
    { at: layout.data, width: 2, value: 0, writable: 0xffff },
  ];
  if (layout.addressHigh !== undefined) fields.push({ at: layout.addressHigh, width: 4, value: 0, writable: 0xffffffff });
  if (layout.mask !== undefined) fields.push({ at: layout.mask, width: 4, value: 0, writable: vectorBits });
  if (layout.pending !== undefined) fields.push({ at: layout.pending, width: 4, value: 0 });
  return { name: "msi", id: CapabilityId.MSI, offset, length: layout.length, fields };
}

export interface MsixOptions {
  readonly vectors: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
}

export const MSIX_CONTROL_FUNCTION_MASK = 1 << 14;
export const MSIX_CONTROL_ENABLE = 1 << 15;

export function msix(offset: number, options: MsixOptions): CapabilitySpec {
  return {
    name: "msi-x",
    id: CapabilityId.MSIX,
    offset,
    length: 12,
    fields: [
      { at: 2, width: 2, value: options.vectors - 1, writable: MSIX_CONTROL_ENABLE | MSIX_CONTROL_FUNCTION_MASK },
      { at: 4, width: 4, value: (options.tableOffset | options.tableBar) >>> 0 },
      { at: 8, width: 4, value: (options.pbaOffset | options.pbaBar) >>> 0 },
    ],
  };
}

export interface PciExpressOptions {
  /**
   * Capability version: 2 is the full 0x3c-byte structure; 1 the PCI Express 1.x endpoint structure, which ends
   * after Link Status (0x14 bytes).
   */
  readonly version: 1 | 2;
  readonly deviceCapabilities: number;
  readonly deviceControl: number;
  readonly linkCapabilities: number;
  readonly linkStatus: number;
  /** Version 2 only. */
  readonly deviceCapabilities2?: number;
  readonly linkCapabilities2?: number;
  /** Link Control 2's reset value (its Target Link Speed is the fastest supported); version 2 only. */
  readonly linkControl2?: number;
}

/** Device Control bit 15: Initiate Function Level Reset (reads 0). */
export const PCIE_DEVICE_CONTROL = 0x08;
export const PCIE_INITIATE_FLR = 1 << 15;
export const PCIE_DEVCAP_FLR = 1 << 28;

// PCI Express capability of an endpoint (device/port type 0). Version 2 is 0x3c bytes whatever the type, the slot
// and root registers reserved; version 1 stops after Link Status.
export function pciExpress(offset: number, options: PciExpressOptions): CapabilitySpec {
  const fields: CapabilityField[] = [
    { at: 0x02, width: 2, value: options.version },
    { at: 0x04, width: 4, value: options.deviceCapabilities },
    // Error reporting enables, relaxed ordering, MPS, extended tag, phantom, aux PM, no snoop, MRRS.
    { at: PCIE_DEVICE_CONTROL, width: 2, value: options.deviceControl, writable: 0x7fff },
    { at: 0x0a, width: 2, value: 0, w1c: 0x000f },
    { at: 0x0c, width: 4, value: options.linkCapabilities },
    // ASPM control, RCB, common clock, extended synch, clock PM enable, HW autonomous width disable.
    { at: 0x10, width: 2, value: 0, writable: 0x03cb },
    { at: 0x12, width: 2, value: options.linkStatus },
  ];
  if (options.version === 1) return { name: "pci-express", id: CapabilityId.PCIE, offset, length: 0x14, fields };
  fields.push(
    { at: 0x24, width: 4, value: options.deviceCapabilities2 ?? 0 },
    // Completion timeout value and disable, LTR enable, OBFF enable.
    { at: 0x28, width: 2, value: 0, writable: 0x641f },
    { at: 0x2c, width: 4, value: options.linkCapabilities2 ?? 0 },
    { at: 0x30, width: 2, value: options.linkControl2 ?? 0, writable: 0x07ff },
    { at: 0x32, width: 2, value: 0 },
  );
  return { name: "pci-express", id: CapabilityId.PCIE, offset, length: 0x3c, fields };
}

/** VPD: a 15-bit address with the F flag in bit 15, then the data dword (the device's hook does the transfers). */
export const VPD_ADDRESS = 2;
export const VPD_DATA = 4;
export const VPD_FLAG = 0x8000;

export function vitalProductData(offset: number): CapabilitySpec {
  return {
    name: "vpd",
    id: CapabilityId.VPD,
    offset,
    length: 8,
    fields: [
      { at: VPD_ADDRESS, width: 2, value: 0, writable: 0xffff },
      { at: VPD_DATA, width: 4, value: 0, writable: 0xffffffff },
    ],
  };
}

// Advanced Error Reporting, version 1, of an endpoint: 0x2c bytes (no root registers, no TLP prefix log).
const AER_UNCORRECTABLE = 0x001ff030; // DLP, SDES, poisoned TLP, FCP, CTO, CA, UC, RO, MTLP, ECRC, UR
const AER_CORRECTABLE = 0x000031c1; // receiver error, bad TLP, bad DLLP, replay rollover, replay timeout, advisory

export function advancedErrorReporting(offset: number): ExtendedCapabilitySpec {
  return {
    name: "aer",
    id: ExtendedCapabilityId.AER,
    version: 1,
    offset,
    length: 0x2c,
    fields: [
      { at: 0x04, width: 4, value: 0, w1c: AER_UNCORRECTABLE },
      { at: 0x08, width: 4, value: 0, writable: AER_UNCORRECTABLE },
      { at: 0x0c, width: 4, value: 0x00062030, writable: AER_UNCORRECTABLE },
      { at: 0x10, width: 4, value: 0, w1c: AER_CORRECTABLE },
      { at: 0x14, width: 4, value: 0x00002000, writable: AER_CORRECTABLE },
      { at: 0x18, width: 4, value: 0 },
    ],
  };
}

// Virtual Channel, version 1, with VC0 only: VC0 is enabled and carries TC0; the other TCs may be mapped to it.
export function virtualChannel(offset: number): ExtendedCapabilitySpec {
  return {
    name: "virtual-channel",
    id: ExtendedCapabilityId.VC,
    version: 1,
    offset,
    length: 0x1c,
    fields: [
      { at: 0x04, width: 4, value: 0 },
      { at: 0x08, width: 4, value: 0 },
      { at: 0x0c, width: 2, value: 0 },
      { at: 0x0e, width: 2, value: 0 },
      { at: 0x10, width: 4, value: 0 },
      { at: 0x14, width: 4, value: 0x800000ff, writable: 0x000000fe },
      { at: 0x1a, width: 2, value: 0 },
    ],
  };
}

export function deviceSerialNumber(offset: number, serial: bigint): ExtendedCapabilitySpec {
  return {
    name: "device-serial-number",
    id: ExtendedCapabilityId.DSN,
    version: 1,
    offset,
    length: 0x0c,
    fields: [
      { at: 0x04, width: 4, value: Number(serial & 0xffffffffn) },
      { at: 0x08, width: 4, value: Number((serial >> 32n) & 0xffffffffn) },
    ],
  };
}
