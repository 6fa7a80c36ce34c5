import type { BarKind, PciDevice } from "@vmm/core";
import { Command, Reg, ROM_ENABLE } from "../config/header.js";
import { barOffset, ROM_INDEX } from "./bar-layout.js";

const TWO_32 = 2 ** 32;
export const IO_LIMIT = 0x1_0000;
export const MEM_LIMIT = 2 ** 52;

/** One BAR as config space says it is now: its programmed address and whether decode is on for it. */
export interface BarState {
  readonly index: number;
  readonly kind: BarKind;
  readonly size: number;
  /** The address in the register(s), type bits removed. */
  readonly address: number;
  /** Command-register (and, for the ROM, enable-bit) gating. */
  readonly enabled: boolean;
}

/** Reads a function's BAR registers and command register through its configRead (works for any PciDevice). */
export function readBarStates(device: PciDevice): BarState[] {
  const command = device.configRead(Reg.COMMAND, 2);
  const io = (command & Command.IO) !== 0;
  const mem = (command & Command.MEMORY) !== 0;
  const out: BarState[] = [];
  for (const bar of device.bars) {
    const off = barOffset(bar.index);
    const low = device.configRead(off, 4) >>> 0;
    let address: number;
    if (bar.kind === "io") address = (low & 0xffff_fffc) >>> 0;
    else if (bar.kind === "mem32") address = (low & 0xffff_fff0) >>> 0;
    else address = (device.configRead(off + 4, 4) >>> 0) * TWO_32 + ((low & 0xffff_fff0) >>> 0);
    out.push({ index: bar.index, kind: bar.kind, size: bar.size, address, enabled: bar.kind === "io" ? io : mem });
  }
  if (device.rom) {
    const reg = device.configRead(Reg.ROM_BAR, 4) >>> 0;
    out.push({
      index: ROM_INDEX,
      kind: "mem32",
      size: device.rom.size,
      address: (reg & 0xffff_f800) >>> 0,
      enabled: mem && (reg & ROM_ENABLE) !== 0,
    });
  }
  return out;
}

/**
 * Whether a programmed window can be decoded: inside the address space (I/O below 64 KiB, memory below 2^52)
 * and not the sizing pattern (every address bit set), which means "being sized", not "assigned".
 */
export function isDecodable(kind: BarKind, address: number, size: number): boolean {
  const limit = kind === "io" ? IO_LIMIT : MEM_LIMIT;
  if (address + size > limit) return false;
  return kind === "io" || address + size !== TWO_32;
}
