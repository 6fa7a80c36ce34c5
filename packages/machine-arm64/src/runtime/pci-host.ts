import type { AddressSpace, InterruptController, IoHandler, Logger, MsiVectorFactory, Registration } from "@vmm/core";
import { PciBus } from "@vmm/pci";
import type { PciHostWindows } from "../memory-map.js";
import { PCI_INTX_SPIS } from "../pci-intx.js";
import type { AddressRange } from "../ranges.js";

// The generic ECAM host bridge the devicetree describes (pci-host-ecam-generic): config space through ECAM, the
// PCI I/O space reached through an MMIO window (bus I/O address = the window's CPU address, as `ranges` says),
// BARs placed in the I/O, 32-bit and 64-bit windows, INTx swizzled over SPIs 1-4.

export interface Arm64PciHostOptions {
  readonly windows: PciHostWindows;
  readonly mmio: AddressSpace;
  /** The PCI I/O space (what I/O BARs are registered in). */
  readonly pio: AddressSpace;
  readonly interrupts: InterruptController;
  readonly msiVectors: MsiVectorFactory;
  readonly logger: Logger;
}

/** The bus with its ECAM window and I/O window in MMIO. */
export function createArm64PciHost(o: Arm64PciHostOptions): PciBus {
  const w = o.windows;
  const bus = new PciBus({
    pio: o.pio,
    mmio: o.mmio,
    msiVectors: o.msiVectors,
    irq: o.interrupts,
    windows: { io: w.io, mem32: w.mmio32, mem64: w.mmio64 },
    logger: o.logger,
    intxGsis: PCI_INTX_SPIS,
  });
  bus.installEcam(w.ecam.base, w.ecam.busCount);
  installIoWindow(o.mmio, w.io, o.pio);
  return bus;
}

/** CPU accesses to the I/O window become port accesses at the same address (arm64 has no I/O instructions). */
export function installIoWindow(mmio: AddressSpace, window: AddressRange, pio: AddressSpace): Registration {
  const handler: IoHandler = {
    read: (offset, size) => pio.read(window.base + offset, size),
    write: (offset, size, value) => pio.write(window.base + offset, size, value),
  };
  return mmio.register(window.base, window.size, "pci i/o window", handler);
}
