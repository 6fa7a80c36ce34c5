import type { PlatformDescription } from "../platform.js";
import { beginSdt, finishSdt } from "./sdt.js";

/** MCFG: where the PCI Express enhanced configuration (ECAM) window is, per segment and bus range. */
export function buildMcfg(ecam: PlatformDescription["ecam"]): Uint8Array {
  const w = beginSdt("MCFG", 1).zeros(8);
  w.u64(ecam.base).u16(ecam.segment).u8(ecam.startBus).u8(ecam.endBus).u32(0);
  return finishSdt(w);
}
