import type { FdtNodeBuilder } from "@vmm/fdt";
import type { GicVersion } from "../gic.js";
import type { PciHostWindows } from "../memory-map.js";
import { pciIntxSpi } from "../pci-intx.js";
import { GIC_PHANDLE, MSI_PHANDLE } from "./gic.js";
import { spi } from "./interrupts.js";
import { PciSpace, physHi, pciAddress } from "./pci-address.js";

// The generic ECAM host bridge (pci-host-ecam-generic, Linux's pci-host-generic driver). BARs are the guest's to
// assign (the bus reassigns them), so there is no linux,pci-probe-only. Windows are identity-mapped: bus address =
// CPU address.

/** Every pin of every bus-0 slot is listed, so the map is exact for each device, not only modulo 4. */
export const INTERRUPT_MAP_MASK = [physHi({ space: PciSpace.config, device: 0x1f }), 0, 0, 7];
const SLOTS = 32;
/** The GIC node's #address-cells: an interrupt-map entry carries that many parent unit-address cells. */
const GIC_ADDRESS_CELLS = 2;

export function addPcie(root: FdtNodeBuilder, pci: PciHostWindows, gic: GicVersion): void {
  root.node(`pcie@${pci.ecam.base.toString(16)}`, (n) => {
    n.string("compatible", "pci-host-ecam-generic")
      .string("device_type", "pci")
      .reg([{ address: pci.ecam.base, size: pci.ecam.size }])
      .u32("bus-range", 0, pci.ecam.busCount - 1)
      .u32("#address-cells", 3)
      .u32("#size-cells", 2)
      .u32("#interrupt-cells", 1)
      .ranges([
        { child: pciAddress({ space: PciSpace.io }, pci.io.base), parent: pci.io.base, size: pci.io.size },
        { child: pciAddress({ space: PciSpace.mem32 }, pci.mmio32.base), parent: pci.mmio32.base, size: pci.mmio32.size },
        // Prefetchable, so that root ports' prefetchable windows (64-bit BARs) can be placed in it.
        { child: pciAddress({ space: PciSpace.mem64, prefetchable: true }, pci.mmio64.base), parent: pci.mmio64.base, size: pci.mmio64.size },
      ])
      .cells("interrupt-map-mask", INTERRUPT_MAP_MASK);
    const gicRef = n.ref(GIC_PHANDLE);
    const map: number[] = [];
    for (let device = 0; device < SLOTS; device++) {
      for (let pin = 1; pin <= 4; pin++) {
        map.push(physHi({ space: PciSpace.config, device }), 0, 0, pin, gicRef, ...new Array<number>(GIC_ADDRESS_CELLS).fill(0), ...spi(pciIntxSpi(device, pin)));
      }
    }
    n.cells("interrupt-map", map);
    // The ITS identifies a device by its requester ID (msi-map: RID -> DeviceID, identity); a v2m frame needs no ID.
    if (gic === "v3") n.u32("msi-map", 0, n.ref(MSI_PHANDLE), 0, 0x10000);
    else n.u32("msi-parent", n.ref(MSI_PHANDLE));
    n.empty("dma-coherent");
  });
}
