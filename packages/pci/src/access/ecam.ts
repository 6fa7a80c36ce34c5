import type { IoHandler } from "@vmm/core";
import { onesFor, type ConfigTarget } from "./target.js";

/** Bytes of ECAM space per bus: 32 devices x 8 functions x 4 KiB. */
export const ECAM_BUS_SIZE = 1 << 20;

/** Splits an ECAM offset into bus (27:20), device (19:15), function (14:12) and register (11:0). */
export function decodeEcam(offset: number): { bus: number; device: number; fn: number; register: number } {
  return {
    bus: Math.floor(offset / ECAM_BUS_SIZE) & 0xff,
    device: (offset >>> 15) & 0x1f,
    fn: (offset >>> 12) & 0x7,
    register: offset & 0xfff,
  };
}

/**
 * The enhanced configuration access mechanism: a memory window of 4 KiB per function. 8-byte accesses are not
 * config transactions: they are dropped (reads all-ones) instead of being split.
 */
export function ecamHandler(target: ConfigTarget): IoHandler {
  return {
    read(offset, size) {
      const a = decodeEcam(offset);
      return target.read(a.bus, a.device, a.fn, a.register, size, "ecam");
    },
    write(offset, size, value) {
      const a = decodeEcam(offset);
      target.write(a.bus, a.device, a.fn, a.register, size, value, "ecam");
    },
    read64(offset) {
      target.dropped(`8-byte ECAM read at 0x${offset.toString(16)}`, "ecam");
      return BigInt(onesFor(4)) * 0x1_0000_0001n;
    },
    write64(offset) {
      target.dropped(`8-byte ECAM write at 0x${offset.toString(16)}`, "ecam");
    },
  };
}
