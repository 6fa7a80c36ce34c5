import type { IoHandler, SmallAccessSize } from "@vmm/core";
import { MsixCapability, PciFunction } from "@vmm/pci";

export const PROBE_VENDOR = 0x1234;
export const PROBE_DEVICE = 0xbeef;
/** BAR registers read ID_MAGIC | the function's device number at +0. */
export const ID_MAGIC = 0xa000_0000;

/**
 * A PCI function for guest tests of the bus itself: an I/O BAR, a 32-bit and a 64-bit memory BAR that all answer
 * the same registers, and MSI-X (2 vectors) in BAR4.
 *   +0x0 ID (read-only)   +0x4 scratch   +0x8 write: fire MSI-X vector   +0xC write: INTx level (0/1)
 */
export class PciProbe extends PciFunction {
  private readonly msixVectors = new MsixCapability({ vectors: 2, tableBar: 4, tableOffset: 0 });
  private scratch = 0;
  private readonly registers: IoHandler = {
    read: (offset, size) => this.readRegister(offset, size),
    write: (offset, _size, value) => this.writeRegister(offset, value),
  };

  constructor(name: string) {
    super({
      name,
      vendorId: PROBE_VENDOR,
      deviceId: PROBE_DEVICE,
      classCode: 0xff0000,
      bars: [
        { index: 0, kind: "io", size: 0x100 },
        { index: 1, kind: "mem32", size: 0x1000 },
        { index: 2, kind: "mem64", size: 0x4000, prefetchable: true },
        { index: 4, kind: "mem32", size: 0x1000 },
      ],
      interruptPin: 1,
    });
    this.addCapability(this.msixVectors);
  }

  protected override deviceBarHandler(index: number): IoHandler | undefined {
    return index <= 2 ? this.registers : undefined;
  }

  private readRegister(offset: number, size: SmallAccessSize): number {
    const dword = offset < 4 ? (ID_MAGIC | (this.address?.device ?? 0)) >>> 0 : offset < 8 ? this.scratch : 0;
    const shift = (offset & 3) * 8;
    return size === 4 ? dword : (dword >>> shift) & (size === 1 ? 0xff : 0xffff);
  }

  private writeRegister(offset: number, value: number): void {
    if (offset === 4) this.scratch = value >>> 0;
    else if (offset === 8) this.msixVectors.notify(value);
    else if (offset === 0xc) this.intx.set(value !== 0);
  }
}
