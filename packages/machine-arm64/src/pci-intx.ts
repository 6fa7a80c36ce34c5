import { swizzle } from "@vmm/pci";
import { Arm64Spis } from "./layout.js";

// INTx routing of the host bridge: the conventional swizzle of @vmm/pci's bus over the four INTx SPIs, so the
// devicetree's interrupt-map and the bus (created with intxGsis: PCI_INTX_SPIS) route every pin alike.

/** The SPIs INTA#-INTD# are swizzled over; the bus's `intxGsis`. */
export const PCI_INTX_SPIS: readonly number[] = Arm64Spis.pciIntx;

/** The SPI a bus-0 slot's pin (1 = INTA# ... 4 = INTD#) raises. */
export function pciIntxSpi(device: number, pin: number): number {
  return swizzle(device, pin, PCI_INTX_SPIS);
}
