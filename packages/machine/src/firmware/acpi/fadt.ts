import { beginSdt, finishSdt } from "./sdt.js";

export const FADT_SIZE = 276;
const HW_REDUCED_ACPI = 1 << 20;
/** IA-PC boot architecture: no VGA probing, no MSI disabled, no ASPM control. */
const IAPC_BOOT_ARCH = 0;

/**
 * A minimal ACPI 6 FADT ("FACP") for a hardware-reduced platform: it points at the DSDT (32- and 64-bit fields)
 * and declares no fixed hardware (no PM timer, no SCI), which is what this VMM emulates.
 */
export function buildFadt(dsdtAddress: number): Uint8Array {
  const w = beginSdt("FACP", 6);
  w.u32(0); // 36 FIRMWARE_CTRL
  w.u32(dsdtAddress); // 40 DSDT
  w.zeros(109 - w.length);
  w.u16(IAPC_BOOT_ARCH); // 109
  w.u8(0); // 111
  w.u32(HW_REDUCED_ACPI); // 112 flags
  w.zeros(131 - w.length);
  w.u8(0); // 131 FADT minor version
  w.u64(0); // 132 X_FIRMWARE_CTRL
  w.u64(dsdtAddress); // 140 X_DSDT
  w.zeros(FADT_SIZE - w.length);
  return finishSdt(w);
}
