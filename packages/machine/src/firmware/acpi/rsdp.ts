import { TableWriter, fixChecksum } from "../bytes.js";
import { OEM_ID } from "./sdt.js";

export const RSDP_SIZE = 36;

/** ACPI 2.0+ Root System Description Pointer: both checksums (first 20 bytes, then all 36). */
export function buildRsdp(rsdtAddress: number, xsdtAddress: number): Uint8Array {
  const w = new TableWriter().text("RSD PTR ", 8).u8(0).text(OEM_ID, 6).u8(2).u32(rsdtAddress).u32(RSDP_SIZE).u64(xsdtAddress).u8(0).zeros(3);
  const rsdp = w.finish();
  fixChecksum(rsdp, 8, 0, 20);
  fixChecksum(rsdp, 32, 0, RSDP_SIZE);
  return rsdp;
}
