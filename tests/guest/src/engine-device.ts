import { type GuestMemory, type IoHandler, RegisterTable } from "@vmm/core";
import { MsixCapability, PciFunction } from "@vmm/pci";

/**
 * An emulated twin of the vfio-user test server's "nvme" device, for side-by-side benchmarks: the same IDs, the
 * same BAR0 layout (test engine at 0x1000, MSI-X table at 0x2000 and PBA at 0x3000, 8 vectors) and the same engine
 * registers (tools/vfio-user-server/README.md), served in this process by the PCI framework instead of through a
 * device process. DMA reads and writes guest memory directly; interrupts go through the framework's MSI-X.
 */
export class EngineTwin extends PciFunction {
  private readonly engineMsix = new MsixCapability({ vectors: 8, tableBar: 0, tableOffset: 0x2000, pbaOffset: 0x3000 });
  private readonly engine: IoHandler;
  src = 0;
  srcHi = 0;
  dst = 0;
  dstHi = 0;
  len = 0;
  op = 0;
  pattern = 0;
  vector = 0;
  status = 0;
  count = 0;
  irqs = 0;
  scratch = 0;

  constructor(
    name: string,
    private readonly memory: GuestMemory,
  ) {
    super({
      name,
      vendorId: 0x144d,
      deviceId: 0xa808,
      classCode: 0x010802,
      bars: [{ index: 0, kind: "mem64", size: 0x4000 }],
      interruptPin: 1,
    });
    this.addCapability(this.engineMsix);
    this.engine = ENGINE.handler(this);
  }

  protected override deviceBarHandler(index: number): IoHandler | undefined {
    if (index !== 0) return undefined;
    return {
      read: (offset, size) => (offset >= 0x1000 && offset < 0x1040 ? this.engine.read(offset - 0x1000, size) : 0),
      write: (offset, size, value) => {
        if (offset >= 0x1000 && offset < 0x1040) this.engine.write(offset - 0x1000, size, value);
      },
    };
  }

  doorbell(value: number): void {
    if (value === 1 || value === 3) {
      if (!this.transfer()) return;
    }
    if (value === 1 || value === 2) {
      this.irqs++;
      this.status |= 4;
      this.engineMsix.notify(this.vector);
    }
  }

  private transfer(): boolean {
    const src = this.src + this.srcHi * 2 ** 32;
    const dst = this.dst + this.dstHi * 2 ** 32;
    if (this.len < 1 || this.len > 0x100000 || !this.memory.contains(src, this.len) || !this.memory.contains(dst, this.len)) {
      this.status |= 2;
      return false;
    }
    if (this.op > 2) {
      this.status |= 2;
      return false;
    }
    const bytes = new Uint8Array(this.len);
    this.memory.read(src, bytes);
    if (this.op === 1) for (let i = 0; i < bytes.length; i++) bytes[i] = ~bytes[i]! & 0xff;
    else if (this.op === 2) for (let i = 0; i < bytes.length; i++) bytes[i] = (bytes[i]! + this.pattern) & 0xff;
    this.memory.write(dst, bytes);
    this.count++;
    this.status |= 1;
    return true;
  }
}

const ENGINE = new RegisterTable<EngineTwin>(
  [
    { name: "MAGIC", offset: 0x00, width: 4, read: () => 0x45545556 },
    { name: "ID", offset: 0x04, width: 4, read: () => 2 },
    { name: "SRC_LO", offset: 0x08, width: 4, field: "src" },
    { name: "SRC_HI", offset: 0x0c, width: 4, field: "srcHi" },
    { name: "DST_LO", offset: 0x10, width: 4, field: "dst" },
    { name: "DST_HI", offset: 0x14, width: 4, field: "dstHi" },
    { name: "LEN", offset: 0x18, width: 4, field: "len" },
    { name: "OP", offset: 0x1c, width: 4, field: "op" },
    { name: "PATTERN", offset: 0x20, width: 4, field: "pattern" },
    { name: "VECTOR", offset: 0x24, width: 4, field: "vector" },
    { name: "DOORBELL", offset: 0x28, width: 4, access: "wo", write: (d, v) => d.doorbell(v) },
    { name: "STATUS", offset: 0x2c, width: 4, access: "w1c", field: "status", mask: 7 },
    { name: "COUNT", offset: 0x30, width: 4, field: "count", access: "ro" },
    { name: "IRQS", offset: 0x34, width: 4, field: "irqs", access: "ro" },
    { name: "SCRATCH", offset: 0x38, width: 4, field: "scratch" },
  ],
  { size: 0x40 },
);
