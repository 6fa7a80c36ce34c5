import { type IoHandler, type RegisterSpec, RegisterTable, type SmallAccessSize } from "@vmm/core";

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

/** What the registers act on: their values and the device's MSI-X request. */
export interface RegisterState {
  readonly id: number;
  scratch: number;
  counter: number;
  lastDoorbell: number;
  irqCount: number;
  errors: number;
  /** Asks the device for an MSI-X vector; false for a vector the device does not have. */
  readonly raise: (vector: number) => boolean;
}

/**
 * The register file, declaratively: a register backed by a `field` reads it (and, unless read-only, stores writes
 * in it); a `write` handler does what a write does and returns false to refuse it.
 */
const REGISTERS: readonly RegisterSpec<RegisterState>[] = [
  { name: "ID", offset: Reg.ID, width: 4, field: "id", access: "ro" },
  { name: "SCRATCH", offset: Reg.SCRATCH, width: 4, field: "scratch" },
  { name: "COUNTER", offset: Reg.COUNTER, width: 4, field: "counter", access: "ro" },
  {
    name: "DOORBELL",
    offset: Reg.DOORBELL,
    width: 4,
    access: "wo",
    write: (s, v) => {
      s.counter = (s.counter + 1) >>> 0;
      s.lastDoorbell = v;
    },
  },
  { name: "LAST_DOORBELL", offset: Reg.LAST_DOORBELL, width: 4, field: "lastDoorbell", access: "ro" },
  {
    name: "MSIX_TRIGGER",
    offset: Reg.MSIX_TRIGGER,
    width: 4,
    access: "wo",
    write: (s, v) => {
      if (!s.raise(v)) return false; // no such vector: refused, so it counts in ERRORS
      s.irqCount = (s.irqCount + 1) >>> 0;
    },
  },
  { name: "IRQ_COUNT", offset: Reg.IRQ_COUNT, width: 4, field: "irqCount", access: "ro" },
  { name: "ERRORS", offset: Reg.ERRORS, width: 4, field: "errors", access: "ro" },
];

/**
 * The access rules: reads may take part of one register; writes must be one whole register; anything else (an
 * access across registers or outside them, a narrow write, a write to a read-only register, a refused vector) is
 * dropped, reads all-ones, and counts in ERRORS. Values are unsigned, whatever the guest or a handler passes.
 */
export const TESTDEV_REGISTERS = new RegisterTable<RegisterState>(REGISTERS, {
  size: REGISTER_BYTES,
  spanning: "refuse",
  narrowWrite: "refuse",
  fill: 0xff,
  onRefused: (s) => void (s.errors = (s.errors + 1) >>> 0),
});

/** One device's registers: BAR-relative accesses served by TESTDEV_REGISTERS on this device's state. */
export class TestdevRegisters {
  readonly state: RegisterState;

  constructor(id: number, raise: (vector: number) => boolean) {
    this.state = { id, scratch: 0, counter: 0, lastDoorbell: 0, irqCount: 0, errors: 0, raise };
  }

  read(offset: number, size: SmallAccessSize): number {
    return TESTDEV_REGISTERS.read(this.state, offset, size);
  }

  write(offset: number, size: SmallAccessSize, value: number): void {
    TESTDEV_REGISTERS.write(this.state, offset, size, value);
  }

  /** The handler both BARs use. */
  handler(): IoHandler {
    return TESTDEV_REGISTERS.handler(this.state);
  }

  reset(): void {
    Object.assign(this.state, { scratch: 0, counter: 0, lastDoorbell: 0, irqCount: 0, errors: 0 });
  }
}
