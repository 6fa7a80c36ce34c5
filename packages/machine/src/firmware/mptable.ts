import { TableWriter, fixChecksum } from "./bytes.js";
import type { PlatformDescription } from "./platform.js";

const PCI_BUS_ID = 0;
const ISA_BUS_ID = 1;
const APIC_VERSION = 0x14;
const IOAPIC_VERSION = 0x11;
const CPU_ENABLED = 1;
const CPU_BOOT = 2;
const INT_TYPE_INT = 0;
const INT_TYPE_NMI = 1;
const INT_TYPE_EXTINT = 3;
/** Polarity active-low (3) and level trigger (3 << 2). */
const PCI_INT_FLAGS = 0x0f;
/** Conforms to the bus (ISA: edge, active high). */
const CONFORMING = 0;
/** Active-high (1) and level trigger (3 << 2): the ACPI SCI, as the MADT's override describes it. */
const SCI_FLAGS = 0x0d;

const Entry = { processor: 0, bus: 1, ioapic: 2, ioInterrupt: 3, localInterrupt: 4 } as const;

/**
 * The Intel MultiProcessor Specification 1.4 configuration table (header "PCMP" and its entries) to be placed
 * at `address`: processors, the PCI and ISA buses, the IOAPIC, one interrupt entry per ISA IRQ and per PCI INTx
 * route, and the local interrupts (ExtINT on LINT0, NMI on LINT1).
 */
export function buildMpConfigTable(p: PlatformDescription): Uint8Array {
  const w = new TableWriter();
  w.text("PCMP", 4).u16(0).u8(4).u8(0).text("VMM-TS", 8).text("x86_64 VM", 12).u32(0).u16(0);
  const countAt = w.length;
  w.u16(0).u32(p.lapicAddress).u16(0).u8(0).u8(0);
  let count = 0;
  p.apicIds.forEach((id, i) => {
    w.u8(Entry.processor).u8(id).u8(APIC_VERSION).u8(CPU_ENABLED | (i === 0 ? CPU_BOOT : 0));
    w.u32(0x600).u32(0x201).zeros(8); // family 6 signature; FPU and APIC present
    count++;
  });
  w.u8(Entry.bus).u8(PCI_BUS_ID).text("PCI", 6);
  w.u8(Entry.bus).u8(ISA_BUS_ID).text("ISA", 6);
  count += 2;
  w.u8(Entry.ioapic).u8(p.ioapic.id).u8(IOAPIC_VERSION).u8(1).u32(p.ioapic.address);
  count++;
  for (const irq of p.isaIrqs) {
    const flags = irq === p.acpiPm?.sciIrq ? SCI_FLAGS : CONFORMING;
    w.u8(Entry.ioInterrupt).u8(INT_TYPE_INT).u16(flags).u8(ISA_BUS_ID).u8(irq).u8(p.ioapic.id).u8(irq - p.ioapic.gsiBase);
    count++;
  }
  for (const r of p.pciIntx) {
    // Source IRQ for PCI: device number in bits 2-6, pin (0 = INTA) in bits 0-1.
    w.u8(Entry.ioInterrupt).u8(INT_TYPE_INT).u16(PCI_INT_FLAGS).u8(PCI_BUS_ID).u8((r.device << 2) | (r.pin - 1));
    w.u8(p.ioapic.id).u8(r.gsi - p.ioapic.gsiBase);
    count++;
  }
  w.u8(Entry.localInterrupt).u8(INT_TYPE_EXTINT).u16(CONFORMING).u8(ISA_BUS_ID).u8(0).u8(0xff).u8(0);
  w.u8(Entry.localInterrupt).u8(INT_TYPE_NMI).u16(CONFORMING).u8(ISA_BUS_ID).u8(0).u8(0xff).u8(1);
  count += 2;
  w.patchU16(4, w.length);
  w.patchU16(countAt, count);
  const table = w.finish();
  fixChecksum(table, 7);
  return table;
}

/** The 16-byte MP floating pointer structure ("_MP_") that points at the configuration table. */
export function buildMpFloatingPointer(configTableAddress: number): Uint8Array {
  const w = new TableWriter();
  w.text("_MP_", 4).u32(configTableAddress).u8(1).u8(4).u8(0).zeros(5);
  const fp = w.finish();
  fixChecksum(fp, 10);
  return fp;
}
