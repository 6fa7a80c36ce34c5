/** What the firmware tables describe: CPUs, the interrupt controllers, ISA IRQs and PCI interrupt routes. */
export interface PlatformDescription {
  /** Local APIC IDs, boot processor first. */
  readonly apicIds: readonly number[];
  readonly lapicAddress: number;
  readonly ioapic: { readonly id: number; readonly address: number; readonly gsiBase: number; readonly pins: number };
  /** ISA IRQs wired one-to-one to IOAPIC pins (edge, active high; the ACPI SCI's, when there is one, level). */
  readonly isaIrqs: readonly number[];
  /** PCI INTx routes: device number on bus 0, pin 1..4 (INTA..INTD), the IOAPIC pin (GSI). Level, active low. */
  readonly pciIntx: readonly { readonly bus: number; readonly device: number; readonly pin: number; readonly gsi: number }[];
  /** The ACPI PM timer's I/O port, when the machine has one (the FADT points at it). */
  readonly pmTimerPort?: number;
  /**
   * The ACPI fixed hardware, when the machine has it: the PM1 event and control blocks, the SCI's ISA IRQ (level,
   * active high) and the SLP_TYP value of S5. The FADT then describes a platform with fixed hardware (and a FACS)
   * instead of a hardware-reduced one, the MADT overrides the SCI's IRQ, and the DSDT declares \_S5.
   */
  readonly acpiPm?: { readonly eventBlock: number; readonly controlBlock: number; readonly sciIrq: number; readonly s5SleepType: number };
  readonly ecam: { readonly base: number; readonly segment: number; readonly startBus: number; readonly endBus: number };
  /** The 32-bit PCI memory window the DSDT declares; `Layout.pciMem32` when absent. */
  readonly pciMem32?: { readonly base: number; readonly size: number };
}
