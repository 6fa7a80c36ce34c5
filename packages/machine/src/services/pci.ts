import type { AddressSpace, InterruptController, Logger, PciDevice } from "@vmm/core";
import { PciBus } from "@vmm/pci";
import { Layout } from "../x86_64/memory-map.js";

/** IOAPIC pins for PCI INTx (above the ISA IRQs, so they never share a pin with a legacy device). */
export const PCI_INTX_GSIS: readonly number[] = [16, 17, 18, 19];

export interface PciHostOptions {
  readonly pio: AddressSpace;
  readonly mmio: AddressSpace;
  readonly interrupts: InterruptController;
  readonly logger: Logger;
}

/** The machine's view of its PCI host: the bus and the interrupt routes the firmware tables describe. */
export interface PciHost {
  readonly bus: PciBus;
  attach(device: PciDevice): void;
  intxRoutes(): { bus: number; device: number; pin: number; gsi: number }[];
}

/**
 * The PCI host bridge: bus 0 behind CF8/CFC and the ECAM window, BARs allocated in the machine's I/O, 32-bit
 * and 64-bit windows, INTx swizzled over IOAPIC pins 16-19.
 */
export function createPciHost(o: PciHostOptions): PciHost {
  const bus = new PciBus({
    pio: o.pio,
    mmio: o.mmio,
    msi: o.interrupts,
    irq: o.interrupts,
    windows: { io: Layout.pciIo, mem32: Layout.pciMem32, mem64: Layout.pciMem64 },
    logger: o.logger,
    intxGsis: PCI_INTX_GSIS,
  });
  bus.installConfigPorts();
  bus.installEcam(Layout.ecam.base, Layout.ecam.busCount);
  return {
    bus,
    attach: (device) => void bus.attach(device),
    intxRoutes: () => bus.intxRoutes().map((r) => ({ bus: r.address.bus, device: r.address.device, pin: r.pin, gsi: r.gsi })),
  };
}
