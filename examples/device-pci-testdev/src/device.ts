import { stateData, stateInt, type DeviceState, type IoHandler } from "@vmm/core";
import { MsixCapability, PciFunction } from "@vmm/pci";
import { DEFAULT_ID, REGISTER_BYTES, TestdevRegisters } from "./registers.js";

export interface PciTestDeviceOptions {
  readonly name: string;
  /** Value of the ID register. */
  readonly id?: number;
  /** MSI-X vectors (1 to 64). */
  readonly vectors?: number;
  readonly vendorId?: number;
  readonly deviceId?: number;
}

/** BAR layout: the registers in memory BAR0 (with the MSI-X table and PBA above them) and in I/O BAR1. */
export const Bars = { mmio: 0, io: 1 } as const;
export const MMIO_BAR_SIZE = 0x1000;
export const MSIX_TABLE_OFFSET = 0x800;
export const TESTDEV_VENDOR_ID = 0x7e57;
export const TESTDEV_DEVICE_ID = 0x0001;
/** Base class 0xff: a device that fits no defined class. */
export const TESTDEV_CLASS = 0xff0000;

/**
 * A PCI test device a guest can find and exercise: a scratch register, an ID register, a doorbell with a counter,
 * and an MSI-X trigger, reachable through both a memory BAR and an I/O BAR.
 */
export class PciTestDevice extends PciFunction {
  readonly registers: TestdevRegisters;
  /** The MSI-X capability (table and PBA in the memory BAR). */
  readonly msixVectors: MsixCapability;
  private readonly handler: IoHandler;

  constructor(options: PciTestDeviceOptions) {
    super({
      name: options.name,
      vendorId: options.vendorId ?? TESTDEV_VENDOR_ID,
      deviceId: options.deviceId ?? TESTDEV_DEVICE_ID,
      classCode: TESTDEV_CLASS,
      revision: 1,
      subsystemVendorId: options.vendorId ?? TESTDEV_VENDOR_ID,
      subsystemId: options.deviceId ?? TESTDEV_DEVICE_ID,
      bars: [
        { index: Bars.mmio, kind: "mem32", size: MMIO_BAR_SIZE },
        { index: Bars.io, kind: "io", size: REGISTER_BYTES },
      ],
      interruptPin: 0,
    });
    this.msixVectors = new MsixCapability({ vectors: options.vectors ?? 4, tableBar: Bars.mmio, tableOffset: MSIX_TABLE_OFFSET });
    this.addCapability(this.msixVectors);
    this.registers = new TestdevRegisters(options.id ?? DEFAULT_ID, (vector) => this.raise(vector));
    this.handler = this.registers.handler();
  }

  protected override deviceBarHandler(index: number): IoHandler | undefined {
    return index === Bars.mmio || index === Bars.io ? this.handler : undefined;
  }

  override reset(): void {
    super.reset();
    this.registers.reset();
  }

  /**
   * Snapshots: the registers outside config space (PciFunction saves config space and the MSI-X table itself).
   * Version 1 of this device's own layout; restoreState checks every field as untrusted data.
   */
  protected override saveDeviceState(): DeviceState {
    const { scratch, counter, lastDoorbell, irqCount, errors } = this.registers.state;
    return { version: 1, data: { scratch, counter, lastDoorbell, irqCount, errors } };
  }

  protected override restoreDeviceState(state: DeviceState | undefined): void {
    const data = stateData(state, this.name, 1);
    const u32 = (key: string) => stateInt(data, key, this.name, 0, 0xffff_ffff);
    Object.assign(this.registers.state, { scratch: u32("scratch"), counter: u32("counter"), lastDoorbell: u32("lastDoorbell"), irqCount: u32("irqCount"), errors: u32("errors") });
  }

  /** Requests an MSI-X vector; false for a vector the device does not have. */
  private raise(vector: number): boolean {
    if (vector >= this.msixVectors.vectors) return false;
    this.msixVectors.notify(vector);
    return true;
  }
}
