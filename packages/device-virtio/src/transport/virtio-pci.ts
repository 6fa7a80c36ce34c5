import {
  type DeviceState,
  type GuestMemory,
  type IoEventRegistry,
  type IoHandler,
  type Logger,
  nextPowerOfTwo,
  type PciBarDescriptor,
  type PciBarWindow,
  SnapshotError,
} from "@vmm/core";
import { MsixCapability, PciFunction } from "@vmm/pci";
import { modernDeviceId, PCI_IDENTITY, VIRTIO_VENDOR_ID } from "../constants.js";
import type { VirtioDevice } from "../device.js";
import { LEGACY_BAR_SIZE, LEGACY_NOTIFY, legacyBarHandler } from "./legacy.js";
import { modernBarHandler, modernCapabilities, modernDoorbells, ModernLayout } from "./modern.js";
import { Doorbells } from "./notify.js";
import { PciCfgCapability } from "./pci-cfg.js";
import { VirtioTransport } from "./state.js";

export type TransportKind = "modern" | "transitional";

export interface VirtioPciOptions {
  name: string;
  device: VirtioDevice;
  memory: GuestMemory;
  ioevents: IoEventRegistry;
  logger: Logger;
  /** modern: virtio 1.x only (device id 0x1040+type). transitional: also the legacy I/O BAR (0x1000-range id). */
  transport?: TransportKind;
}

/** BAR numbers: legacy I/O registers, the modern structures, the MSI-X table and PBA. */
export const Bars = { LEGACY: 0, MODERN: 1, MSIX: 2 } as const;

/**
 * A virtio device on PCI (virtio 1.x, 4.1): vendor capabilities for the modern interface, optionally the legacy
 * I/O BAR, MSI-X with one vector for configuration changes plus one per queue, and INTx with the ISR otherwise.
 * Doorbells are ioevents that follow the BARs wherever the guest moves them.
 */
export class VirtioPciFunction extends PciFunction {
  readonly transport: VirtioTransport;
  readonly kind: TransportKind;
  readonly virtioDevice: VirtioDevice;
  private readonly virtioHandlers: Record<number, IoHandler>;
  private readonly doorbells: Record<number, Doorbells>;

  constructor(options: VirtioPciOptions) {
    const { device, name } = options;
    const kind = options.transport ?? "modern";
    const transitional = kind === "transitional";
    const identity = PCI_IDENTITY[device.type];
    const vectors = device.queueSizes.length + 1;
    const msix = new MsixCapability({ vectors, tableBar: Bars.MSIX });
    const bars: PciBarDescriptor[] = [
      ...(transitional ? [{ index: Bars.LEGACY, kind: "io" as const, size: LEGACY_BAR_SIZE }] : []),
      { index: Bars.MODERN, kind: "mem32", size: ModernLayout.BAR_SIZE },
      { index: Bars.MSIX, kind: "mem32", size: Math.max(0x1000, nextPowerOfTwo(msix.tableSize + msix.pbaSize)) },
    ];
    super({
      name,
      vendorId: VIRTIO_VENDOR_ID,
      deviceId: transitional ? identity.transitionalId : modernDeviceId(device.type),
      classCode: identity.classCode,
      revision: transitional ? 0 : 1,
      subsystemVendorId: VIRTIO_VENDOR_ID,
      subsystemId: transitional ? device.type : 0x40 + device.type,
      interruptPin: 1,
      bars,
    });
    this.kind = kind;
    this.virtioDevice = device;
    this.transport = new VirtioTransport(
      device,
      options.memory,
      {
        msixEnabled: () => this.msix?.enabled ?? false,
        msixVectors: () => vectors,
        msix: (v) => this.msix?.notify(v),
        intx: () => this.intx,
        msixEventFd: (v) => this.msix?.vectorEventFd(v),
      },
      options.logger,
      name,
    );
    this.transport.setBusMaster(this.busMasterEnabled); // clear after reset: no DMA until the driver sets it
    this.addCapability(msix);
    msix.subscribe(() => this.transport.interruptRoutesChanged());
    for (const cap of modernCapabilities(Bars.MODERN, device.queueSizes.length, device.config.length)) this.addCapability(cap);
    this.addCapability(new PciCfgCapability((bar) => this.barHandler(bar)));

    this.virtioHandlers = { [Bars.MODERN]: modernBarHandler(this.transport) };
    const ring = (q: number) => this.transport.notify(q);
    this.doorbells = {
      // Modern drivers ring only after DRIVER_OK, so a data-plane worker may take the doorbell directly; legacy
      // drivers may ring earlier, which the JS thread must see (the legacy doorbell stays trapped-or-forwarded).
      [Bars.MODERN]: new Doorbells(options.ioevents, "mmio", modernDoorbells(device.queueSizes.length), ring, (q) =>
        this.transport.doorbellEventFd(q),
      ),
    };
    if (transitional) {
      this.virtioHandlers[Bars.LEGACY] = legacyBarHandler(this.transport);
      const legacy = device.queueSizes.map((_, q) => ({ queue: q, offset: LEGACY_NOTIFY, size: 2 as const, datamatch: q }));
      this.doorbells[Bars.LEGACY] = new Doorbells(options.ioevents, "pio", legacy, ring);
    }
  }

  protected override deviceBarHandler(index: number): IoHandler | undefined {
    return this.virtioHandlers[index];
  }

  override barActivated(window: PciBarWindow): void {
    this.doorbells[window.index]?.activate(window.address);
  }

  override barDeactivated(window: PciBarWindow): void {
    this.doorbells[window.index]?.deactivate();
  }

  /** Where the doorbells of a BAR are registered now (for tests and traces). */
  doorbellAddress(index: number): number | undefined {
    return this.doorbells[index]?.address;
  }

  /** Bus Master Enable gates all virtqueue DMA (the @vmm/pci side holds MSI/MSI-X itself). */
  protected override busMasterChanged(enabled: boolean): void {
    this.transport.setBusMaster(enabled);
  }

  override reset(): void {
    super.reset();
    this.transport.reset();
  }

  /** Snapshots: see VirtioTransport.quiesce (doorbells and host input held, work in flight completed). */
  async quiesce(): Promise<void> {
    await this.transport.quiesce();
  }

  /** The snapshot is written and the VM goes on: what was held since `quiesce` is served. */
  resume(): void {
    this.transport.resume();
  }

  /** The transport's state and the device's (PciFunction saves config space, MSI-X and INTx itself). */
  protected override saveDeviceState(): DeviceState {
    return this.transport.saveState();
  }

  /**
   * Runs after config space and MSI-X are back and before the bus re-decodes the BARs (whose barActivated then
   * registers the doorbells' ioeventfds at the restored addresses).
   */
  protected override restoreDeviceState(state: DeviceState | undefined): void {
    if (!state) throw new SnapshotError(`${this.name}: the saved state has no virtio transport state`);
    this.transport.restoreState(state, this.busMasterEnabled);
  }

  /**
   * The device's own counters, then per queue served by a data-plane worker (`vmm run --stats`, `vmm stat`): the
   * requests it completed, the interrupts it signalled through the queue's irqfd, and those it handed back.
   */
  counters(): Readonly<Record<string, number>> {
    const out: Record<string, number> = { ...this.virtioDevice.counters() };
    this.virtioDevice.queueSizes.forEach((_, queue) => {
      const stats = this.transport.dataPlane(queue)?.stats;
      if (!stats) return;
      out[`queue${queue}WorkerRequests`] = stats.completed;
      out[`queue${queue}IrqfdSignals`] = stats.irqfdSignals;
      out[`queue${queue}Handbacks`] = stats.handbacks;
    });
    return out;
  }

  /** Stops the device and releases its host resources (doorbells, files, sockets) when the VM ends. */
  async close(): Promise<void> {
    for (const d of Object.values(this.doorbells)) d.deactivate();
    this.transport.shutdown(); // no interrupt traffic: the machine may already be gone
    await this.virtioDevice.close();
  }
}
