import { type AddressSpace, MmioBackedMemoryMapper, createMmioSpace, createPortIoSpace, type InterruptLine, SignalMsiVectors } from "@vmm/core";
import { PciBus } from "@vmm/pci";
import { VesaDevice } from "../../src/device.js";
import { VBE_DATA_PORT, VBE_INDEX_PORT, VbeEnable, VbeIndex } from "../../src/vbe/registers.js";
import { patternColour } from "./pattern.js";

/** A machine without KVM: port and MMIO spaces, a PCI bus, RAM-backed BARs through the MMIO space. */
export function machine(fbSize?: number) {
  const pio = createPortIoSpace();
  const mmio = createMmioSpace();
  const mapper = new MmioBackedMemoryMapper(mmio);
  const line: InterruptLine = { level: false, set() {} };
  const bus = new PciBus({
    pio,
    mmio,
    msiVectors: new SignalMsiVectors({ signal() {} }),
    irq: () => line,
    windows: { io: { base: 0x6200, size: 0x9e00 }, mem32: { base: 0xc0000000, size: 0x20000000 } },
  });
  bus.installConfigPorts();
  const device = new VesaDevice({ name: "vesa0", mapper, pio, fbSize });
  const address = bus.attach(device);
  return { pio, mmio, bus, device, guest: new Guest(pio, mmio, address.device) };
}

/** What a guest does, through port I/O and MMIO only. */
export class Guest {
  constructor(
    readonly pio: AddressSpace,
    readonly mmio: AddressSpace,
    readonly slot: number,
  ) {}

  configRead(offset: number): number {
    this.pio.write(0xcf8, 4, (0x80000000 | (this.slot << 11) | offset) >>> 0);
    return this.pio.read(0xcfc, 4) >>> 0;
  }

  configWrite(offset: number, value: number): void {
    this.pio.write(0xcf8, 4, (0x80000000 | (this.slot << 11) | offset) >>> 0);
    this.pio.write(0xcfc, 4, value >>> 0);
  }

  /** BAR 0's address and size, found the way firmware sizes BARs. */
  sizeBar0(): { address: number; size: number } {
    const original = this.configRead(0x10);
    this.configWrite(0x10, 0xffffffff);
    const mask = this.configRead(0x10);
    this.configWrite(0x10, original);
    return { address: (original & ~0xf) >>> 0, size: (~(mask & ~0xf) + 1) >>> 0 };
  }

  vbeWrite(index: number, value: number): void {
    this.pio.write(VBE_INDEX_PORT, 2, index);
    this.pio.write(VBE_DATA_PORT, 2, value);
  }

  vbeRead(index: number): number {
    this.pio.write(VBE_INDEX_PORT, 2, index);
    return this.pio.read(VBE_DATA_PORT, 2);
  }

  setMode(width: number, height: number, bpp: number): void {
    this.vbeWrite(VbeIndex.ENABLE, 0);
    this.vbeWrite(VbeIndex.XRES, width);
    this.vbeWrite(VbeIndex.YRES, height);
    this.vbeWrite(VbeIndex.BPP, bpp);
    this.vbeWrite(VbeIndex.ENABLE, VbeEnable.ENABLED | VbeEnable.LFB_ENABLED);
  }

  /** Draws the test pattern with 32-bit MMIO stores into a 32 bpp linear framebuffer at `lfb`. */
  drawPattern(lfb: number, width: number, height: number): void {
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const [r, g, b] = patternColour(x, y);
        this.mmio.write(lfb + (y * width + x) * 4, 4, ((r << 16) | (g << 8) | b) >>> 0);
      }
  }
}
