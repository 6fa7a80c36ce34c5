import { createMmioSpace, createPortIoSpace, SignalMsiVectors, type AddressSpace, type InterruptLine, type PciAddress, type PciDevice, type SmallAccessSize } from "@vmm/core";
import { PciBus } from "@vmm/pci";

/** Where the throwaway bus places BARs: ordinary PC windows, below and above 4 GiB. */
const WINDOWS = {
  io: { base: 0x6000, size: 0xa000 },
  mem32: { base: 0xc000_0000, size: 0x3000_0000 },
  mem64: { base: 2 ** 36, size: 2 ** 40 },
};

/** A device on a real PciBus of its own (plain address spaces, MSI messages dropped, no KVM), reached by config accesses as a guest would. */
export class ConfigProbe {
  readonly bus: PciBus;
  readonly mmio: AddressSpace;
  readonly address: PciAddress;

  constructor(readonly device: PciDevice, express?: "endpoint" | "rc-integrated") {
    const pio = createPortIoSpace();
    this.mmio = createMmioSpace();
    this.bus = new PciBus({
      pio,
      mmio: this.mmio,
      msiVectors: new SignalMsiVectors({ signal: () => {} }),
      irq: (): InterruptLine => ({ level: false, set() {} }),
      windows: WINDOWS,
    });
    this.address = this.bus.attach(device, express ? { express } : {});
  }

  read(offset: number, size: SmallAccessSize): number {
    return this.bus.configRead(this.address, offset, size) >>> 0;
  }

  write(offset: number, size: SmallAccessSize, value: number): void {
    this.bus.configWrite(this.address, offset, size, value >>> 0);
  }

  /** Writes `value`, reads the register back and writes the original back. */
  probe(offset: number, size: SmallAccessSize, value: number): { before: number; after: number } {
    const before = this.read(offset, size);
    this.write(offset, size, value);
    const after = this.read(offset, size);
    this.write(offset, size, before);
    return { before, after };
  }

  /** The config space size the bus serves this function. */
  get configSize(): number {
    return this.device.express ? 4096 : 256;
  }

  detach(): void {
    this.bus.detach(this.device);
  }
}
