import type { SmallAccessSize } from "@vmm/core";

/** Type 0 header offsets. */
export const Reg = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION: 0x08,
  CLASS_CODE: 0x09,
  CACHE_LINE_SIZE: 0x0c,
  LATENCY_TIMER: 0x0d,
  HEADER_TYPE: 0x0e,
  BIST: 0x0f,
  BAR0: 0x10,
  CARDBUS_CIS: 0x28,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  ROM_BAR: 0x30,
  CAPABILITIES_POINTER: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
  MIN_GNT: 0x3e,
  MAX_LAT: 0x3f,
} as const;

export const Command = {
  IO: 1 << 0,
  MEMORY: 1 << 1,
  BUS_MASTER: 1 << 2,
  PARITY_ERROR_RESPONSE: 1 << 6,
  SERR: 1 << 8,
  INTX_DISABLE: 1 << 10,
} as const;

export const Status = {
  INTERRUPT: 1 << 3,
  CAPABILITIES_LIST: 1 << 4,
  /** Error bits a guest clears by writing 1 (master data parity, target/master aborts, SERR, parity). */
  ERRORS_W1C: 0xf900,
} as const;

export const HEADER_TYPE_MULTI_FUNCTION = 0x80;
export const ROM_ENABLE = 1;
export const FIRST_CAPABILITY = 0x40;
export const EXTENDED_CAPABILITIES = 0x100;

/** One header register: its offset, width, initial value and masks. */
export interface HeaderRegister {
  readonly name: string;
  readonly offset: number;
  readonly size: SmallAccessSize;
  readonly initial: number;
  readonly writable?: number;
  readonly writeOneToClear?: number;
}

export interface HeaderIdentity {
  vendorId: number;
  deviceId: number;
  classCode: number;
  revision: number;
  subsystemVendorId: number;
  subsystemId: number;
  interruptPin: number;
  express: boolean;
}

/**
 * The type 0 header as a register table (BARs, ROM BAR and capability pointer are laid out separately). Bits a
 * table entry does not mark writable are read-only; the bus owns the multi-function bit of the header type.
 */
export function type0Header(id: HeaderIdentity): HeaderRegister[] {
  return [
    { name: "vendor", offset: Reg.VENDOR_ID, size: 2, initial: id.vendorId },
    { name: "device", offset: Reg.DEVICE_ID, size: 2, initial: id.deviceId },
    {
      name: "command",
      offset: Reg.COMMAND,
      size: 2,
      initial: 0,
      writable:
        Command.IO | Command.MEMORY | Command.BUS_MASTER | Command.PARITY_ERROR_RESPONSE | Command.SERR | Command.INTX_DISABLE,
    },
    { name: "status", offset: Reg.STATUS, size: 2, initial: 0, writeOneToClear: Status.ERRORS_W1C },
    { name: "revision", offset: Reg.REVISION, size: 1, initial: id.revision },
    { name: "class", offset: Reg.CLASS_CODE, size: 1, initial: id.classCode & 0xff },
    { name: "class", offset: Reg.CLASS_CODE + 1, size: 2, initial: (id.classCode >>> 8) & 0xffff },
    { name: "cache line size", offset: Reg.CACHE_LINE_SIZE, size: 1, initial: 0, writable: 0xff },
    // Conventional PCI lets software program the latency timer; PCI Express hardwires it to 0.
    { name: "latency timer", offset: Reg.LATENCY_TIMER, size: 1, initial: 0, writable: id.express ? 0 : 0xff },
    { name: "header type", offset: Reg.HEADER_TYPE, size: 1, initial: 0 },
    { name: "BIST", offset: Reg.BIST, size: 1, initial: 0 },
    { name: "subsystem vendor", offset: Reg.SUBSYSTEM_VENDOR_ID, size: 2, initial: id.subsystemVendorId },
    { name: "subsystem", offset: Reg.SUBSYSTEM_ID, size: 2, initial: id.subsystemId },
    { name: "interrupt line", offset: Reg.INTERRUPT_LINE, size: 1, initial: 0, writable: 0xff },
    { name: "interrupt pin", offset: Reg.INTERRUPT_PIN, size: 1, initial: id.interruptPin },
  ];
}
