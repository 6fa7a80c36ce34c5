import { SignalMsiVectors, type AddressSpace, type InterruptController, type Logger, type PciDevice } from "@vmm/core";
import { PciBus, type PciPlacement } from "@vmm/pci";
import { CF8_ADDRESS_PORT, CF8_DATA_PORT, type EcamWindow } from "@vmm/pci";
import type { IoHandler, Registration } from "@vmm/core";
import { Layout } from "../x86_64/memory-map.js";
import type { MsiRouter } from "./msi-routes.js";
import { KvmMsiVectors, KvmMsiVectorSet } from "./msi-vectors.js";

/** IOAPIC pins for PCI INTx (above the ISA IRQs, so they never share a pin with a legacy device). */
export const PCI_INTX_GSIS: readonly number[] = [16, 17, 18, 19];

export interface PciHostOptions {
  readonly pio: AddressSpace;
  readonly mmio: AddressSpace;
  readonly interrupts: InterruptController;
  readonly logger: Logger;
  /** When given, every attached function's MSI and MSI-X vectors are delivered through irqfd routes (else KVM_SIGNAL_MSI). */
  readonly msiRoutes?: MsiRouter;
  /** The function at 00:00.0 instead of the bus's plain host bridge (the machine's Q35 bridge). */
  readonly hostBridge?: PciDevice;
  /** Wraps CONFIG_ADDRESS's handler (0xCF8-0xCFB), e.g. to put the reset control register at 0xCF9. */
  readonly configAddress?: (inner: IoHandler) => IoHandler;
}

/** The machine's view of its PCI host: the bus and the interrupt routes the firmware tables describe. */
export interface PciHost {
  readonly bus: PciBus;
  /** Moves ECAM where PCIEXBAR says (or removes it when disabled). */
  moveEcam(window: EcamWindow): void;
  /** Places a function on bus 0 (default) or as `placement` says (behind a bridge, as a PCI Express endpoint). */
  attach(device: PciDevice, placement?: PciPlacement): void;
  /** Removes a function from the bus; the bus closes its MSI vector sets, which removes their routes from KVM. */
  detach(device: PciDevice): void;
  /** The irqfd-backed vector sets of a function's MSI / MSI-X capabilities (empty without them or without `msiRoutes`). */
  msiVectorSets(device: PciDevice): KvmMsiVectorSet[];
  intxRoutes(): { bus: number; device: number; pin: number; gsi: number }[];
  /** MSI vector deliveries that fell back from their irqfd to KVM_SIGNAL_MSI. */
  msiFallbacks(): number;
  /** Removes every MSI route (before the VM is closed). */
  close(): void;
}

/**
 * The PCI host bridge: bus 0 behind CF8/CFC and the ECAM window, BARs allocated in the machine's I/O, 32-bit
 * and 64-bit windows, INTx swizzled over IOAPIC pins 16-19. Each function's MSI and MSI-X vectors come from one
 * factory handed over at attach: irqfd routes kept in step with what the guest programmed (KvmMsiVectors), or
 * KVM_SIGNAL_MSI without `msiRoutes`.
 */
export function createPciHost(o: PciHostOptions): PciHost {
  const vectors = o.msiRoutes ? new KvmMsiVectors(o.msiRoutes, o.interrupts, o.logger) : undefined;
  const bus = new PciBus({
    pio: o.pio,
    mmio: o.mmio,
    msiVectors: vectors ?? new SignalMsiVectors(o.interrupts),
    irq: o.interrupts,
    windows: { io: Layout.pciIo, mem32: Layout.pciMem32, mem64: Layout.pciMem64 },
    logger: o.logger,
    intxGsis: PCI_INTX_GSIS,
    hostBridge: !o.hostBridge,
  });
  if (o.hostBridge) bus.attach(o.hostBridge, { device: 0, function: 0 });
  const address = o.configAddress ? o.configAddress(bus.cf8.addressHandler) : bus.cf8.addressHandler;
  o.pio.register(CF8_ADDRESS_PORT, 4, "pci config address", address);
  o.pio.register(CF8_DATA_PORT, 4, "pci config data", bus.cf8.dataHandler);
  let ecam: Registration | undefined = bus.installEcam(Layout.ecam.base, Layout.ecam.busCount);
  return {
    bus,
    moveEcam: (w) => {
      ecam?.unregister();
      ecam = w.enabled ? bus.installEcam(w.base, w.busCount) : undefined;
    },
    attach: (device, placement) => void bus.attach(device, placement),
    detach: (device) => bus.detach(device),
    msiVectorSets: (device) => bus.msiVectorSets(device).filter((s) => s instanceof KvmMsiVectorSet),
    intxRoutes: () => bus.intxRoutes().map((r) => ({ bus: r.address.bus, device: r.address.device, pin: r.pin, gsi: r.gsi })),
    msiFallbacks: () => vectors?.fallbacks ?? 0,
    close: () => vectors?.close(),
  };
}
