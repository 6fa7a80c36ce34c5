import { type DeviceState, type IoHandler, RegisterTable, type SmallAccessSize, type Snapshottable, decodeBytes, encodeBytes, stateData, stateInt } from "@vmm/core";

export const CMOS_PORTS = { index: 0x70, data: 0x71 } as const;

const STATUS_B_24H = 0x02;
const STATUS_B_BINARY = 0x04;
const STATUS_D_VALID = 0x80;
const HOUR_PM = 0x80;

export interface CmosMemorySizes {
  /** Conventional memory in KiB (below 640 KiB). */
  readonly baseKiB: number;
  /** RAM from 1 MiB up to the PCI hole, in bytes. */
  readonly extendedBytes: number;
  /** RAM above 4 GiB, in bytes. */
  readonly highBytes: number;
}

type TimeField = (t: Date) => number;

/** Clock registers: index -> the UTC field they show (converted to BCD or binary on read). */
const CLOCK: Readonly<Record<number, TimeField>> = {
  0x00: (t) => t.getUTCSeconds(),
  0x02: (t) => t.getUTCMinutes(),
  0x04: (t) => t.getUTCHours(),
  0x06: (t) => t.getUTCDay() + 1,
  0x07: (t) => t.getUTCDate(),
  0x08: (t) => t.getUTCMonth() + 1,
  0x09: (t) => t.getUTCFullYear() % 100,
  0x32: (t) => Math.floor(t.getUTCFullYear() / 100),
};

const REG_A = 0x0a;
const REG_B = 0x0b;
const REG_C = 0x0c;
const REG_D = 0x0d;

const toBcd = (v: number) => ((Math.floor(v / 10) % 10) << 4) | v % 10;

/**
 * MC146818 CMOS RTC and NVRAM behind index port 0x70 (bit 7 = NMI mask) and data port 0x71. The time registers
 * read the host clock (UTC) in BCD or binary and 24- or 12-hour form as status register B selects; the memory
 * size registers (0x15-0x18, 0x30/0x31, 0x34/0x35, 0x5B-0x5D) are filled from the machine's memory map.
 * Offsets: 0 = index port, 1 = data port.
 */
export class CmosRtc implements IoHandler, Snapshottable {
  /** The two ports, each one byte (wider accesses reach the bytes after them, which read 0xff). */
  private static readonly PORTS = new RegisterTable<CmosRtc>(
    [
      { name: "INDEX", offset: 0, width: 1, read: (c) => c.index, write: (c, v) => void (c.index = v & 0x7f) },
      { name: "DATA", offset: 1, width: 1, read: (c) => c.register(c.index), write: (c, v) => c.writeData(v) },
    ],
    { fill: 0xff },
  );
  private readonly nvram = new Uint8Array(128);
  private index = 0;

  constructor(
    sizes: CmosMemorySizes,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.nvram[REG_A] = 0x26; // 32.768 kHz time base, 1024 Hz periodic rate
    this.nvram[REG_B] = STATUS_B_24H;
    this.nvram[REG_D] = STATUS_D_VALID;
    const base = Math.min(sizes.baseKiB, 640);
    this.setWord(0x15, base);
    const extKiB = Math.min(Math.floor(sizes.extendedBytes / 1024), 0xffff);
    this.setWord(0x17, extKiB);
    this.setWord(0x30, extKiB);
    const above16M = Math.max(0, sizes.extendedBytes - 15 * 1024 * 1024);
    this.setWord(0x34, Math.min(Math.floor(above16M / 65536), 0xffff));
    const high = Math.floor(sizes.highBytes / 65536);
    this.nvram[0x5b] = high & 0xff;
    this.nvram[0x5c] = (high >> 8) & 0xff;
    this.nvram[0x5d] = (high >> 16) & 0xff;
  }

  /** The NVRAM and the index; the clock registers read the host clock, so they carry nothing. */
  saveState(): DeviceState {
    return { version: 1, data: { index: this.index, nvram: encodeBytes(this.nvram) } };
  }

  restoreState(state: DeviceState): void {
    const d = stateData(state, "cmos-rtc", 1);
    this.nvram.set(decodeBytes(d.nvram, "cmos-rtc: nvram", this.nvram.length));
    this.index = stateInt(d, "index", "cmos-rtc", 0, 0x7f);
  }

  private setWord(at: number, v: number): void {
    this.nvram[at] = v & 0xff;
    this.nvram[at + 1] = (v >> 8) & 0xff;
  }

  /** Reads a register directly (for tests and diagnostics). */
  register(index: number): number {
    const field = CLOCK[index];
    if (field) return this.clockValue(index, field(this.now()));
    if (index === REG_C) {
      const v = this.nvram[REG_C]!;
      this.nvram[REG_C] = 0; // interrupt flags clear on read
      return v;
    }
    return this.nvram[index & 0x7f]!;
  }

  private clockValue(index: number, value: number): number {
    const b = this.nvram[REG_B]!;
    let v = value;
    let pm = 0;
    if (index === 0x04 && !(b & STATUS_B_24H)) {
      pm = v >= 12 ? HOUR_PM : 0;
      v = v % 12 || 12;
    }
    return (b & STATUS_B_BINARY ? v : toBcd(v)) | pm;
  }

  read(offset: number, size: SmallAccessSize): number {
    return CmosRtc.PORTS.read(this, offset, size);
  }

  write(offset: number, size: SmallAccessSize, value: number): void {
    CmosRtc.PORTS.write(this, offset, size, value);
  }

  private writeData(value: number): void {
    const i = this.index;
    // Clock registers follow the host clock; status C and D are read-only; UIP (bit 7 of A) is read-only.
    if (CLOCK[i] || i === REG_C || i === REG_D) return;
    this.nvram[i] = i === REG_A ? value & 0x7f : value;
  }
}
