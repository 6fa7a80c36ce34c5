import type { PlatformDescription } from "../platform.js";
import { beginSdt, finishSdt } from "./sdt.js";

const PCAT_COMPAT = 1;
const LAPIC_ENABLED = 1;
/** Active-low, level-triggered: the MPS INTI flags of a PCI interrupt. */
const LEVEL_LOW = 0x0f;
/** Active-high, level-triggered: the SCI on its ISA IRQ (as PIIX4 and ICH9 wire it). */
const LEVEL_HIGH = 0x0d;

/**
 * MADT ("APIC"): the local APIC address, one Processor Local APIC entry per CPU, the IOAPIC, interrupt source
 * overrides for the SCI (level, active high: without one an OS takes the SCI as level, active low) and for PCI INTx
 * lines (level, active low), and the LINT1 NMI.
 */
export function buildMadt(p: PlatformDescription): Uint8Array {
  const w = beginSdt("APIC", 4).u32(p.lapicAddress).u32(PCAT_COMPAT);
  p.apicIds.forEach((id, uid) => w.u8(0).u8(8).u8(uid).u8(id).u32(LAPIC_ENABLED));
  w.u8(1).u8(12).u8(p.ioapic.id).u8(0).u32(p.ioapic.address).u32(p.ioapic.gsiBase);
  const overridden = new Set<number>();
  if (p.acpiPm) {
    overridden.add(p.acpiPm.sciIrq);
    w.u8(2).u8(10).u8(0).u8(p.acpiPm.sciIrq).u32(p.acpiPm.sciIrq).u16(LEVEL_HIGH);
  }
  for (const r of p.pciIntx) {
    if (r.gsi >= 16 || overridden.has(r.gsi)) continue; // GSIs above 15 are not ISA IRQs: the DSDT would route them
    overridden.add(r.gsi);
    w.u8(2).u8(10).u8(0).u8(r.gsi).u32(r.gsi).u16(LEVEL_LOW);
  }
  w.u8(4).u8(6).u8(0xff).u16(0).u8(1); // NMI on LINT1 of every processor
  return finishSdt(w);
}
