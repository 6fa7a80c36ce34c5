import type { PlatformDescription } from "../platform.js";
import { buildDsdt, type DsdtDescription } from "./dsdt.js";
import { FACS_ALIGN, buildFacs } from "./facs.js";
import { buildFadt, type FadtHardware } from "./fadt.js";
import { machineDsdtDescription } from "./machine-dsdt.js";
import { buildMadt } from "./madt.js";
import { buildMcfg } from "./mcfg.js";
import { buildRsdp } from "./rsdp.js";
import { buildRsdt, buildXsdt } from "./rsdt.js";

export { buildDsdt, buildFacs, buildFadt, buildMadt, buildMcfg, buildRsdp, buildRsdt, buildXsdt };
export { beginSdt, finishSdt } from "./sdt.js";
export { FACS_ALIGN, FACS_SIZE } from "./facs.js";
export { FADT_SIZE, FadtOffset, type AcpiPmBlocks, type FadtHardware } from "./fadt.js";
export * as aml from "./aml.js";
export * as amlResources from "./aml-resources.js";
export { dsdtDefinitions, prtEntries, type DsdtWindow, type DsdtDescription, type IsaDeviceDescription, type PciRootDescription, type PrtEntry } from "./dsdt.js";
export { machineDsdtDescription } from "./machine-dsdt.js";

export interface PlacedTable {
  readonly address: number;
  readonly bytes: Uint8Array;
}

const alignUp = (n: number, to: number) => Math.ceil(n / to) * to;

/** What the FADT describes of platform `p`, given where the FACS went (only a platform with fixed hardware has one). */
export function fadtHardware(p: PlatformDescription, facs: number | undefined): FadtHardware {
  return { pmTimerPort: p.pmTimerPort, pm: p.acpiPm, facs };
}

/**
 * Lays out the ACPI tables from `base` upwards (16-byte aligned): RSDP first (so guests scanning the BIOS area
 * find it), then the FACS (64-byte aligned; only with fixed hardware, `p.acpiPm`), DSDT, FADT, MADT, MCFG, RSDT
 * and XSDT. Returns each table with its address. The DSDT describes
 * this machine's PCI root bridge and legacy devices unless `description` says otherwise.
 */
export function buildAcpiTables(p: PlatformDescription, base: number, description: DsdtDescription = machineDsdtDescription(p)): PlacedTable[] {
  const placed: PlacedTable[] = [];
  let at = base + 36;
  const put = (bytes: Uint8Array, align = 16): number => {
    const address = alignUp(at, align);
    placed.push({ address, bytes });
    at = address + bytes.length;
    return address;
  };
  const facs = p.acpiPm ? put(buildFacs(), FACS_ALIGN) : undefined;
  const dsdt = put(buildDsdt(description));
  const pointed = [put(buildFadt(dsdt, fadtHardware(p, facs))), put(buildMadt(p)), put(buildMcfg(p.ecam))];
  const rsdt = put(buildRsdt(pointed));
  const xsdt = put(buildXsdt(pointed));
  placed.unshift({ address: base, bytes: buildRsdp(rsdt, xsdt) });
  return placed;
}
