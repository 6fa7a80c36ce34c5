import type { PlatformDescription } from "../platform.js";
import { buildDsdt, type DsdtDescription } from "./dsdt.js";
import { buildFadt } from "./fadt.js";
import { machineDsdtDescription } from "./machine-dsdt.js";
import { buildMadt } from "./madt.js";
import { buildMcfg } from "./mcfg.js";
import { buildRsdp } from "./rsdp.js";
import { buildRsdt, buildXsdt } from "./rsdt.js";

export { buildDsdt, buildFadt, buildMadt, buildMcfg, buildRsdp, buildRsdt, buildXsdt };
export { beginSdt, finishSdt } from "./sdt.js";
export * as aml from "./aml.js";
export * as amlResources from "./aml-resources.js";
export { dsdtDefinitions, prtEntries, type DsdtWindow, type DsdtDescription, type IsaDeviceDescription, type PciRootDescription, type PrtEntry } from "./dsdt.js";
export { machineDsdtDescription } from "./machine-dsdt.js";

export interface PlacedTable {
  readonly address: number;
  readonly bytes: Uint8Array;
}

const align16 = (n: number) => (n + 15) & ~15;

/**
 * Lays out the ACPI tables from `base` upwards (16-byte aligned): RSDP first (so guests scanning the BIOS area
 * find it), then DSDT, FADT, MADT, MCFG, RSDT and XSDT. Returns each table with its address. The DSDT describes
 * this machine's PCI root bridge and legacy devices unless `description` says otherwise.
 */
export function buildAcpiTables(p: PlatformDescription, base: number, description: DsdtDescription = machineDsdtDescription(p)): PlacedTable[] {
  const placed: PlacedTable[] = [];
  let at = align16(base + 36);
  const put = (bytes: Uint8Array): number => {
    const address = at;
    placed.push({ address, bytes });
    at = align16(at + bytes.length);
    return address;
  };
  const dsdt = put(buildDsdt(description));
  const pointed = [put(buildFadt(dsdt, p.pmTimerPort)), put(buildMadt(p)), put(buildMcfg(p.ecam))];
  const rsdt = put(buildRsdt(pointed));
  const xsdt = put(buildXsdt(pointed));
  placed.unshift({ address: base, bytes: buildRsdp(rsdt, xsdt) });
  return placed;
}
