// A PCI function as bare bytes and per-bit writable masks, so a test can break any one rule on purpose.
import type { PciBarDescriptor, PciDevice, SmallAccessSize } from "@vmm/core";

export class RawDevice implements PciDevice {
  readonly bytes = new Uint8Array(256);
  readonly writable = new Uint8Array(256);
  bars: PciBarDescriptor[] = [];
  rom?: { size: number; bytes: Uint8Array };

  constructor(readonly name: string) {}

  /** Sets a register's value and which of its bits a write changes. */
  set(offset: number, size: SmallAccessSize, value: number, writable = 0): this {
    for (let i = 0; i < size; i++) {
      this.bytes[offset + i] = (value >>> (8 * i)) & 0xff;
      this.writable[offset + i] = (writable >>> (8 * i)) & 0xff;
    }
    return this;
  }

  configRead(offset: number, size: SmallAccessSize): number {
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.bytes[offset + i]! << (8 * i);
    return value >>> 0;
  }

  configWrite(offset: number, size: SmallAccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const mask = this.writable[offset + i]!;
      this.bytes[offset + i] = (this.bytes[offset + i]! & ~mask) | ((value >>> (8 * i)) & mask);
    }
  }
}

/**
 * A well-behaved function: 1234:5678, a 4 KiB memory BAR0 (MSI-X table at 0x800, PBA at 0xc00, 4 vectors), a
 * 32-byte I/O BAR1, the MSI-X capability at 0x40 followed by a vendor-specific one at 0x50.
 */
export function goodRawDevice(name = "raw0"): RawDevice {
  const d = new RawDevice(name);
  d.set(0x00, 2, 0x1234).set(0x02, 2, 0x5678);
  d.set(0x04, 2, 0, 0x0507); // command: I/O, memory, bus master, parity, SERR, INTx disable
  d.set(0x06, 2, 0x0010); // status: capability list
  d.set(0x08, 4, 0x0280_0001); // revision 1, class 0x028000
  d.set(0x10, 4, 0x0000_0000, 0xffff_f000); // BAR0: 32-bit memory, 4 KiB
  d.set(0x14, 4, 0x0000_0001, 0xffff_ffe0); // BAR1: I/O, 32 bytes
  d.set(0x2c, 2, 0x1234).set(0x2e, 2, 0x0001);
  d.set(0x34, 1, 0x40);
  d.set(0x3c, 1, 0, 0xff); // interrupt line
  // MSI-X: ID, next 0x50, control (table size 3 = 4 vectors; enable and function mask writable), table, PBA.
  d.set(0x40, 1, 0x11).set(0x41, 1, 0x50).set(0x42, 2, 0x0003, 0xc000);
  d.set(0x44, 4, 0x0000_0800).set(0x48, 4, 0x0000_0c00);
  // Vendor-specific: ID 0x09, next 0, length 8.
  d.set(0x50, 1, 0x09).set(0x51, 1, 0).set(0x52, 1, 8);
  d.bars = [
    { index: 0, kind: "mem32", size: 0x1000 },
    { index: 1, kind: "io", size: 32 },
  ];
  return d;
}
