import { type IoHandler, type PciCapability, type SmallAccessSize, toUnsigned } from "@vmm/core";
import { CfgType, VENDOR_CAPABILITY_ID } from "./modern.js";

/** Body offsets of struct virtio_pci_cfg_cap after the 2-byte header (virtio 1.x, 4.1.4.9). */
const BAR = 2;
const OFFSET = 6;
const LENGTH = 10;
const DATA = 14;

/**
 * VIRTIO_PCI_CAP_PCI_CFG: a window in config space onto the BARs, for drivers that cannot map them. The
 * driver sets bar, offset and length (1, 2 or 4, naturally aligned), then reads or writes pci_cfg_data. Other
 * settings make the data window inert.
 */
export class PciCfgCapability implements PciCapability {
  readonly id = VENDOR_CAPABILITY_ID;
  readonly body = new Uint8Array(18);
  readonly writable = new Uint8Array(18);
  private readonly view = new DataView(this.body.buffer);

  constructor(private readonly bar: (index: number) => IoHandler | undefined) {
    this.body[0] = 20; // cap_len
    this.body[1] = CfgType.PCI;
    this.writable[BAR] = 0xff;
    this.writable.fill(0xff, OFFSET, DATA + 4);
  }

  onRead(offset: number, size: SmallAccessSize): void {
    if (offset + size <= DATA || offset >= DATA + 4) return;
    const target = this.target();
    if (target) this.view.setUint32(DATA, target.handler.read(target.offset, target.length) >>> 0, true);
  }

  onWrite(offset: number, size: SmallAccessSize, _value: number): void {
    if (offset + size <= DATA || offset >= DATA + 4) return;
    const target = this.target();
    if (!target) return;
    target.handler.write(target.offset, target.length, toUnsigned(this.view.getUint32(DATA, true), target.length));
  }

  private target(): { handler: IoHandler; offset: number; length: SmallAccessSize } | undefined {
    const length = this.view.getUint32(LENGTH, true);
    const offset = this.view.getUint32(OFFSET, true);
    if ((length !== 1 && length !== 2 && length !== 4) || offset % length !== 0) return undefined;
    const handler = this.bar(this.body[BAR]!);
    return handler ? { handler, offset, length } : undefined;
  }
}
