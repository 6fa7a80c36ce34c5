// Which of a passed-through device's capabilities the VMM shows, replaces or hides. The tables here are the
// policy (the README's list is written from them); the model applies them.
import { MsiCapability, MsixCapability } from "@vmm/pci";
import { readLE } from "@vmm/core";

export const CapabilityId = { MSI: 0x05, EXPRESS: 0x10, MSIX: 0x11, ENHANCED_ALLOCATION: 0x14 } as const;

/** Standard capabilities hidden from the chain whatever the device, and why. */
export const HIDDEN_CAPABILITIES: ReadonlyMap<number, string> = new Map([
  [CapabilityId.ENHANCED_ALLOCATION, "Enhanced Allocation gives BARs fixed addresses, and the VMM places the BARs itself"],
]);

/** Extended capabilities hidden from the list (PCI Express placement), and why. */
export const HIDDEN_EXTENDED_CAPABILITIES: ReadonlyMap<number, string> = new Map([
  [0x000e, "ARI: the VMM's root ports do not forward alternative routing IDs"],
  [0x000f, "ATS: address translation needs an IOMMU in the guest, and none is emulated"],
  [0x0010, "SR-IOV: virtual functions would be host devices the guest cannot create"],
  [0x0013, "Page Request: needs an IOMMU in the guest"],
  [0x0015, "Resizable BAR: BAR sizes are fixed by the regions the VMM sized them from"],
  [0x001b, "PASID: needs an IOMMU in the guest"],
  [0x0024, "VF Resizable BAR: BAR sizes are fixed, as for Resizable BAR"],
]);

const align4 = (n: number) => (n + 3) & ~3;

/** Bytes a capability object takes in config space, header included. */
export const capabilityLength = (bodyLength: number): number => align4(2 + bodyLength);

/**
 * The VMM's MSI capability for the device's, at the same offset: the same vector count (Multiple Message
 * Capable, limited to what the backend can signal), address width and per-vector masking. A string says why the
 * capability must be hidden instead.
 */
export function msiFromDevice(config: Uint8Array, offset: number, room: number, signalled: number): MsiCapability | string {
  if (signalled < 1) return "MSI: the backend cannot signal MSI interrupts";
  const control = readLE(config, offset + 2, 2);
  const capable = 2 ** Math.min((control >> 1) & 7, 5);
  let vectors = 1;
  while (vectors * 2 <= Math.min(capable, signalled)) vectors *= 2;
  const cap = new MsiCapability({ vectors, address64: (control & 0x80) !== 0, perVectorMask: (control & 0x100) !== 0 });
  if (capabilityLength(cap.body.length) > room) return `MSI at 0x${offset.toString(16)} does not fit before the next capability`;
  return cap;
}

/** Where the device's MSI-X table and PBA sit (from its capability registers). */
export interface MsixLayout {
  readonly vectors: number;
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
}

export function msixLayout(config: Uint8Array, offset: number): MsixLayout {
  const table = readLE(config, offset + 4, 4);
  const pba = readLE(config, offset + 8, 4);
  return {
    vectors: (readLE(config, offset + 2, 2) & 0x7ff) + 1,
    tableBar: table & 7,
    tableOffset: (table & ~7) >>> 0,
    pbaBar: pba & 7,
    pbaOffset: (pba & ~7) >>> 0,
  };
}

/**
 * The VMM's MSI-X capability for the device's, at the same offset, with the device's table size and table/PBA
 * placement (the framework traps them in the device's BARs). A string says why it must be hidden instead.
 */
export function msixFromDevice(layout: MsixLayout, offset: number, room: number, signalled: number): MsixCapability | string {
  if (signalled < 1) return "MSI-X: the backend cannot signal MSI-X interrupts";
  if (capabilityLength(10) > room) return `MSI-X at 0x${offset.toString(16)} does not fit before the next capability`;
  if (layout.tableBar > 5 || layout.pbaBar > 5) return `MSI-X names BAR ${Math.max(layout.tableBar, layout.pbaBar)} for its table or PBA`;
  try {
    return new MsixCapability(layout);
  } catch (e) {
    return `MSI-X layout refused: ${(e as Error).message}`;
  }
}
