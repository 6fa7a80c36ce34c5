import { beginSdt, finishSdt } from "./sdt.js";

/** RSDT: 32-bit pointers to the other tables. */
export function buildRsdt(tables: readonly number[]): Uint8Array {
  const w = beginSdt("RSDT", 1);
  for (const t of tables) w.u32(t);
  return finishSdt(w);
}

/** XSDT: 64-bit pointers to the other tables. */
export function buildXsdt(tables: readonly number[]): Uint8Array {
  const w = beginSdt("XSDT", 1);
  for (const t of tables) w.u64(t);
  return finishSdt(w);
}
