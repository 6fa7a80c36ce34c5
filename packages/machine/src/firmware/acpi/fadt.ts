import { beginSdt, finishSdt } from "./sdt.js";

export const FADT_SIZE = 276;
const HW_REDUCED_ACPI = 1 << 20;
/** IA-PC boot architecture: no VGA probing, no MSI disabled, no ASPM control. */
const IAPC_BOOT_ARCH = 0;

/** Generic Address Structure address space ID for system I/O. */
const GAS_SYSTEM_IO = 1;
/** GAS access size 3: dword. */
const GAS_DWORD = 3;

/**
 * A minimal ACPI 6 FADT ("FACP") for a hardware-reduced platform: it points at the DSDT (32- and 64-bit fields)
 * and declares no fixed hardware but, when `pmTimerPort` is given, the 24-bit PM timer (PM_TMR_BLK and
 * X_PM_TMR_BLK): x86 Linux takes it from the FADT even on hardware-reduced platforms, as a clocksource and a
 * reference that needs no command-line help.
 */
export function buildFadt(dsdtAddress: number, pmTimerPort?: number): Uint8Array {
  const w = beginSdt("FACP", 6);
  w.u32(0); // 36 FIRMWARE_CTRL
  w.u32(dsdtAddress); // 40 DSDT
  w.zeros(76 - w.length);
  w.u32(pmTimerPort ?? 0); // 76 PM_TMR_BLK
  w.zeros(91 - w.length);
  w.u8(pmTimerPort === undefined ? 0 : 4); // 91 PM_TMR_LEN
  w.zeros(109 - w.length);
  w.u16(IAPC_BOOT_ARCH); // 109
  w.u8(0); // 111
  w.u32(HW_REDUCED_ACPI); // 112 flags
  w.zeros(131 - w.length);
  w.u8(0); // 131 FADT minor version
  w.u64(0); // 132 X_FIRMWARE_CTRL
  w.u64(dsdtAddress); // 140 X_DSDT
  w.zeros(208 - w.length);
  // 208 X_PM_TMR_BLK: space, bit width, bit offset, access size, address
  if (pmTimerPort === undefined) w.zeros(12);
  else {
    w.u8(GAS_SYSTEM_IO);
    w.u8(32);
    w.u8(0);
    w.u8(GAS_DWORD);
    w.u64(pmTimerPort);
  }
  w.zeros(FADT_SIZE - w.length);
  return finishSdt(w);
}
