import type { IoHandler, SmallAccessSize } from "@vmm/core";

/** The VGA DAC (palette) ports the device answers, for 8 bpp modes: PEL mask, read index, write index, data. */
export const DAC_PORT_BASE = 0x3c6;
export const DAC_PORT_COUNT = 4;

/**
 * The 256-entry VGA palette: a write index, a read index and 3-byte (red, green, blue) data cycles. Entries are
 * 6 bits per channel unless the VBE 8-bit DAC bit is set. `words` holds each entry as an RGBA word (little-endian
 * 0xAABBGGRR) for pixel conversion, with the PEL mask applied by the converter.
 */
export class VgaDac {
  /** Entries as 8-bit channels, 3 bytes each. */
  private readonly entries = new Uint8Array(256 * 3);
  readonly words = new Uint32Array(256).fill(0xff000000);
  pelMask = 0xff;
  private writeIndex = 0;
  private readIndex = 0;
  private writeCycle = 0;
  private readCycle = 0;
  private lastWasRead = false;

  constructor(
    /** True while VBE ENABLE has 8BIT_DAC set: channels are 8 bits instead of 6. */
    private readonly eightBit: () => boolean,
    /** A palette entry changed: every 8 bpp pixel may look different. */
    private readonly onChange: () => void,
  ) {}

  reset(): void {
    this.entries.fill(0);
    this.words.fill(0xff000000);
    this.pelMask = 0xff;
    this.writeIndex = this.readIndex = this.writeCycle = this.readCycle = 0;
  }

  /** Port handler for DAC_PORT_BASE..+3. Byte accesses; wider ones act on their first byte. */
  portHandler(): IoHandler {
    return {
      read: (offset, size) => this.read(offset, size),
      write: (offset, _size, value) => this.write(offset, value & 0xff),
    };
  }

  private read(offset: number, _size: SmallAccessSize): number {
    switch (offset) {
      case 0:
        return this.pelMask;
      case 1:
        return this.lastWasRead ? 0x03 : 0x00; // DAC state: 3 = in read mode
      case 2:
        return this.writeIndex;
      default: {
        const v = this.entries[this.readIndex * 3 + this.readCycle]!;
        if (++this.readCycle === 3) {
          this.readCycle = 0;
          this.readIndex = (this.readIndex + 1) & 0xff;
        }
        return this.eightBit() ? v : v >> 2;
      }
    }
  }

  private write(offset: number, value: number): void {
    switch (offset) {
      case 0:
        this.pelMask = value;
        this.onChange();
        return;
      case 1:
        this.readIndex = value;
        this.readCycle = 0;
        this.lastWasRead = true;
        return;
      case 2:
        this.writeIndex = value;
        this.writeCycle = 0;
        this.lastWasRead = false;
        return;
      default: {
        const v = this.eightBit() ? value : ((value & 0x3f) << 2) | ((value & 0x3f) >> 4);
        const i = this.writeIndex;
        this.entries[i * 3 + this.writeCycle] = v;
        if (++this.writeCycle === 3) {
          this.writeCycle = 0;
          const e = this.entries;
          this.words[i] = (e[i * 3]! | (e[i * 3 + 1]! << 8) | (e[i * 3 + 2]! << 16) | 0xff000000) >>> 0;
          this.writeIndex = (i + 1) & 0xff;
          this.onChange();
        }
      }
    }
  }
}
