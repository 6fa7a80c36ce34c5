import type { SmallAccessSize } from "@vmm/core";

/**
 * The test device's registers, the same in the memory BAR and the I/O BAR (offsets relative to the BAR). Every
 * register is 32 bits wide. Reads of 1 or 2 bytes return part of a register; writes must be 4 bytes wide and
 * aligned, anything else is dropped and counted in ERRORS.
 */
export const Reg = {
  /** RO: identifies the device ("TEST" unless the `id` option says otherwise). */
  ID: 0x00,
  /** RW: holds whatever the guest writes. */
  SCRATCH: 0x04,
  /** RO: how many times DOORBELL was written. */
  COUNTER: 0x08,
  /** WO: counts the write and remembers its value in LAST_DOORBELL. */
  DOORBELL: 0x0c,
  /** RO: the value of the last DOORBELL write. */
  LAST_DOORBELL: 0x10,
  /** WO: raises the MSI-X vector whose number is written. */
  MSIX_TRIGGER: 0x14,
  /** RO: how many MSI-X requests were accepted. */
  IRQ_COUNT: 0x18,
  /** RO: dropped accesses (bad width or alignment, writes to read-only registers, bad vector numbers). */
  ERRORS: 0x1c,
} as const;

/** Bytes of register space; the I/O BAR is exactly this size, the memory BAR larger (MSI-X lives above). */
export const REGISTER_BYTES = 0x20;

/** "TEST" as a little-endian dword. */
export const DEFAULT_ID = 0x54534554;

export interface RegisterState {
  readonly id: number;
  scratch: number;
  counter: number;
  lastDoorbell: number;
  irqCount: number;
  errors: number;
}

interface Register {
  readonly name: keyof typeof Reg;
  readonly read?: (s: RegisterState) => number;
  /** Returns false to count the write as an error (e.g. a bad vector number). */
  readonly write?: (s: RegisterState, value: number, raise: (vector: number) => boolean) => boolean | void;
}

/** The register file, declaratively: absent `read` reads 0, absent `write` makes the register read-only. */
const REGISTERS: readonly Register[] = [
  { name: "ID", read: (s) => s.id },
  { name: "SCRATCH", read: (s) => s.scratch, write: (s, v) => void (s.scratch = v) },
  { name: "COUNTER", read: (s) => s.counter },
  {
    name: "DOORBELL",
    write: (s, v) => {
      s.counter = (s.counter + 1) >>> 0;
      s.lastDoorbell = v;
    },
  },
  { name: "LAST_DOORBELL", read: (s) => s.lastDoorbell },
  {
    name: "MSIX_TRIGGER",
    write: (s, v, raise) => {
      if (!raise(v)) return false;
      s.irqCount = (s.irqCount + 1) >>> 0;
    },
  },
  { name: "IRQ_COUNT", read: (s) => s.irqCount },
  { name: "ERRORS", read: (s) => s.errors },
];

const BY_OFFSET = new Map<number, Register>(REGISTERS.map((r) => [Reg[r.name], r]));

/** Serves BAR-relative accesses to the register file. `raise` asks for an MSI-X vector and says if it was valid. */
export class TestdevRegisters {
  readonly state: RegisterState;

  constructor(
    id: number,
    private readonly raise: (vector: number) => boolean,
  ) {
    this.state = { id, scratch: 0, counter: 0, lastDoorbell: 0, irqCount: 0, errors: 0 };
  }

  read(offset: number, size: SmallAccessSize): number {
    const base = offset & ~3;
    const shift = (offset & 3) * 8;
    if (offset + size > base + 4 || base >= REGISTER_BYTES) return this.drop(size === 4 ? 0xffffffff : (1 << (size * 8)) - 1);
    const value = BY_OFFSET.get(base)?.read?.(this.state) ?? 0;
    const mask = size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
    return ((value >>> shift) & mask) >>> 0;
  }

  write(offset: number, size: SmallAccessSize, value: number): void {
    const reg = BY_OFFSET.get(offset);
    if (size !== 4 || !reg?.write) return void this.drop(0);
    if (reg.write(this.state, value >>> 0, this.raise) === false) this.drop(0);
  }

  reset(): void {
    Object.assign(this.state, { scratch: 0, counter: 0, lastDoorbell: 0, irqCount: 0, errors: 0 });
  }

  private drop<T>(result: T): T {
    this.state.errors = (this.state.errors + 1) >>> 0;
    return result;
  }
}
