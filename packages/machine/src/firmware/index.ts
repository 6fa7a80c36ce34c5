import type { GuestMemory } from "@vmm/core";
import { Layout } from "../x86_64/memory-map.js";
import { buildAcpiTables } from "./acpi/index.js";
import { buildMpConfigTable, buildMpFloatingPointer } from "./mptable.js";
import type { PlatformDescription } from "./platform.js";

export * from "./platform.js";
export * from "./bytes.js";
export * from "./mptable.js";
export * from "./acpi/index.js";

/**
 * Writes the firmware tables a guest looks for: the BDA's EBDA pointer, the MP floating pointer at the start of
 * the EBDA, and from the BIOS area (0xF0000) the RSDP and the other ACPI tables followed by the MP config table.
 * Returns where the RSDP and MP configuration table went.
 */
export function writeFirmwareTables(memory: GuestMemory, p: PlatformDescription): { rsdp: number; mpConfig: number } {
  memory.view(Layout.ebda, Layout.ebdaEnd - Layout.ebda).fill(0);
  memory.view(Layout.bios, Layout.biosEnd - Layout.bios).fill(0);
  memory.writeU16(Layout.bdaEbdaPointer, Layout.ebda >> 4);
  let end: number = Layout.bios;
  for (const t of buildAcpiTables(p, Layout.bios)) {
    memory.write(t.address, t.bytes);
    end = Math.max(end, t.address + t.bytes.length);
  }
  const mpConfig = (end + 15) & ~15;
  const table = buildMpConfigTable(p);
  if (mpConfig + table.length > Layout.biosEnd) throw new RangeError("firmware tables overflow the BIOS area");
  memory.write(mpConfig, table);
  memory.write(Layout.ebda, buildMpFloatingPointer(mpConfig));
  return { rsdp: Layout.bios, mpConfig };
}
