import { decodeBytes, encodeBytes, type IoHandler, RegisterTable, SnapshotError, type StateValue, stateData, stateInt } from "@vmm/core";

/** The VGA DAC (palette) ports the device answers, for 8 bpp modes: PEL mask, read index, write index, data. */
export const DAC_PORT_BASE = 0x3c6;
export const DAC_PORT_COUNT = 4;

/**
 * The 256-entry VGA palette: a write index, a read index and 3-byte (red, green, blue) data cycles. Entries are
 * 6 bits per channel unless the VBE 8-bit DAC bit is set. `words` holds each entry as an RGBA word (little-endian
 * 0xAABBGGRR) for pixel conversion, with the PEL mask applied by the converter.
 */
export class VgaDac {
  /** One byte register per port; a wider access acts on the port's register alone. */
  private static readonly PORTS = new RegisterTable<VgaDac>(
    [
      { name: "PEL_MASK", offset: 0, width: 1, field: "pelMask", write: (d, v) => d.setPelMask(v) },
      { name: "READ_INDEX/DAC_STATE", offset: 1, width: 1, read: (d) => (d.lastWasRead ? 0x03 : 0x00), write: (d, v) => d.setReadIndex(v) }, // 3 = in read mode
      { name: "WRITE_INDEX", offset: 2, width: 1, read: (d) => d.writeIndex, write: (d, v) => d.setWriteIndex(v) },
      { name: "DATA", offset: 3, width: 1, read: (d) => d.readData(), write: (d, v) => d.writeData(v) },
    ],
    { decode: "port" },
  );
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

  /** The palette (8-bit channels), the PEL mask and where the index and data cycles stand, as snapshot data. */
  saveState(): StateValue {
    const { pelMask, writeIndex, readIndex, writeCycle, readCycle, lastWasRead } = this;
    return { entries: encodeBytes(this.entries), pelMask, writeIndex, readIndex, writeCycle, readCycle, lastWasRead };
  }

  /** Restores `saveState` data (checked first: SnapshotError naming `what`, nothing changed); displays repaint. */
  restoreState(data: StateValue | undefined, what: string): void {
    const f = stateData({ version: 1, data: data ?? null }, `${what} DAC`, 1);
    const entries = decodeBytes(f.entries, `${what} DAC entries`, this.entries.length);
    const byte = (key: string) => stateInt(f, key, `${what} DAC`, 0, 0xff);
    const cycle = (key: string) => stateInt(f, key, `${what} DAC`, 0, 2);
    const state = { pelMask: byte("pelMask"), writeIndex: byte("writeIndex"), readIndex: byte("readIndex"), writeCycle: cycle("writeCycle"), readCycle: cycle("readCycle") };
    if (typeof f.lastWasRead !== "boolean") throw new SnapshotError(`${what} DAC: lastWasRead must be a boolean`);
    this.entries.set(entries);
    for (let i = 0; i < 256; i++) this.words[i] = (entries[i * 3]! | (entries[i * 3 + 1]! << 8) | (entries[i * 3 + 2]! << 16) | 0xff000000) >>> 0;
    Object.assign(this, state);
    this.lastWasRead = f.lastWasRead;
    this.onChange();
  }

  /** Port handler for DAC_PORT_BASE..+3. Byte accesses; wider ones act on their first byte. */
  portHandler(): IoHandler {
    return VgaDac.PORTS.handler(this);
  }

  private setPelMask(value: number): void {
    this.pelMask = value;
    this.onChange();
  }

  private setReadIndex(value: number): void {
    this.readIndex = value;
    this.readCycle = 0;
    this.lastWasRead = true;
  }

  private setWriteIndex(value: number): void {
    this.writeIndex = value;
    this.writeCycle = 0;
    this.lastWasRead = false;
  }

  private readData(): number {
    const v = this.entries[this.readIndex * 3 + this.readCycle]!;
    if (++this.readCycle === 3) {
      this.readCycle = 0;
      this.readIndex = (this.readIndex + 1) & 0xff;
    }
    return this.eightBit() ? v : v >> 2;
  }

  private writeData(value: number): void {
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
