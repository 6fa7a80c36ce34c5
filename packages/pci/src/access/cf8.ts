import type { IoHandler } from "@vmm/core";
import { onesFor, type ConfigTarget } from "./target.js";

export const CF8_ADDRESS_PORT = 0xcf8;
export const CF8_DATA_PORT = 0xcfc;
const ENABLE = 0x8000_0000;
/** Bits CONFIG_ADDRESS implements: enable, bus, device, function, register. 30:24 and 1:0 are reserved, read 0. */
const LATCH_BITS = 0x80ff_fffc;

/** The fields of a CONFIG_ADDRESS value: bit 31 enable, 23:16 bus, 15:11 device, 10:8 function, 7:2 register. */
export function decodeCf8(latch: number): { enabled: boolean; bus: number; device: number; fn: number; register: number } {
  return {
    enabled: (latch & ENABLE) !== 0,
    bus: (latch >>> 16) & 0xff,
    device: (latch >>> 11) & 0x1f,
    fn: (latch >>> 8) & 0x7,
    register: latch & 0xfc,
  };
}

/**
 * Configuration mechanism #1: a 32-bit address latch at 0xCF8 (dword accesses only; it reads back what was
 * written with the reserved bits 30:24 and 1:0 as 0) and a data window at 0xCFC-0xCFF (1/2/4-byte accesses that
 * stay inside the dword). Anything else is dropped and counted by the target.
 */
export class Cf8Mechanism {
  /** The CONFIG_ADDRESS latch. */
  latch = 0;

  constructor(private readonly target: ConfigTarget) {}

  /** Handler for the 4 ports at 0xCF8. */
  readonly addressHandler: IoHandler = {
    read: (offset, size) => {
      if (offset !== 0 || size !== 4) {
        this.target.dropped(`CONFIG_ADDRESS ${size}-byte read at +${offset}`, "cf8");
        return onesFor(size);
      }
      return this.latch >>> 0;
    },
    write: (offset, size, value) => {
      if (offset !== 0 || size !== 4) return this.target.dropped(`CONFIG_ADDRESS ${size}-byte write at +${offset}`, "cf8");
      this.latch = (value & LATCH_BITS) >>> 0;
    },
  };

  /** Handler for the 4 ports at 0xCFC. */
  readonly dataHandler: IoHandler = {
    read: (offset, size) => {
      const a = decodeCf8(this.latch);
      if (!a.enabled) {
        this.target.dropped("CONFIG_DATA read with the enable bit clear", "cf8");
        return onesFor(size);
      }
      return this.target.read(a.bus, a.device, a.fn, a.register + offset, size, "cf8");
    },
    write: (offset, size, value) => {
      const a = decodeCf8(this.latch);
      if (!a.enabled) return this.target.dropped("CONFIG_DATA write with the enable bit clear", "cf8");
      this.target.write(a.bus, a.device, a.fn, a.register + offset, size, value, "cf8");
    },
  };
}
