import { VPD_ADDRESS, VPD_DATA, VPD_FLAG } from "../pci/capabilities.js";
import type { ConfigSpace } from "../pci/config-space.js";

/**
 * The VPD capability's transfers: writing the address with F clear reads the dword there into the data register
 * and sets F; writing it with F set stores the data register there and clears F. Addresses past the storage read
 * 0 and drop writes.
 */
export class VpdFunction {
  private storage: Uint8Array;

  constructor(
    private readonly config: ConfigSpace,
    private readonly offset: number,
    private readonly image: Uint8Array,
  ) {
    this.storage = image.slice();
    config.onWrite(offset + VPD_ADDRESS, 2, () => this.transfer());
  }

  reset(): void {
    this.storage = this.image.slice();
  }

  private transfer(): void {
    const register = this.config.u16(this.offset + VPD_ADDRESS);
    const address = register & ~VPD_FLAG & 0x7ffc;
    const inside = address + 4 <= this.storage.length;
    if (register & VPD_FLAG) {
      const data = this.config.u32(this.offset + VPD_DATA);
      if (inside) for (let i = 0; i < 4; i++) this.storage[address + i] = (data >>> (8 * i)) & 0xff;
      this.config.set(this.offset + VPD_ADDRESS, 2, register & ~VPD_FLAG);
    } else {
      let data = 0;
      if (inside) for (let i = 0; i < 4; i++) data |= this.storage[address + i]! << (8 * i);
      this.config.set(this.offset + VPD_DATA, 4, data >>> 0);
      this.config.set(this.offset + VPD_ADDRESS, 2, register | VPD_FLAG);
    }
  }
}
