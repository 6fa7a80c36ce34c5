import type { TableWriter } from "../bytes.js";
import { beginSdt, finishSdt } from "./sdt.js";

export const FADT_SIZE = 276;
/** Byte offsets of the FADT fields the table loader patches (ACPI 6.5, table 5.9). */
export const FadtOffset = { firmwareCtrl: 36, dsdt: 40, xDsdt: 140 } as const;

/** FADT flags (ACPI 6.5, table 5.10). */
const Flag = {
  /** WBINVD flushes caches and invalidates them, as ACPI requires of IA-PC processors. */
  WBINVD: 1 << 0,
  /** C1 (HLT) works on every processor. */
  PROC_C1: 1 << 2,
  /** Set: the power button is a control method device or absent; clear: it is the fixed-feature button. */
  PWR_BUTTON: 1 << 4,
  /** Set: no fixed-feature sleep button. */
  SLP_BUTTON: 1 << 5,
  HW_REDUCED_ACPI: 1 << 20,
} as const;
/** IA-PC boot architecture: no VGA probing, no MSI disabled, no ASPM control. */
const IAPC_BOOT_ARCH = 0;
/** Worst-case C2 and C3 latencies above these limits (100 us, 1000 us) say the states are not supported. */
const C2_UNSUPPORTED = 101;
const C3_UNSUPPORTED = 1001;

/** Generic Address Structure address space ID for system I/O. */
const GAS_SYSTEM_IO = 1;
/** GAS access sizes: word, dword. */
const GAS_WORD = 2;
const GAS_DWORD = 3;

/** The ACPI fixed hardware's register blocks on I/O ports, and the SCI's ISA IRQ. */
export interface AcpiPmBlocks {
  /** PM1a_EVT_BLK: PM1_STS and PM1_EN, 2 bytes each. */
  readonly eventBlock: number;
  /** PM1a_CNT_BLK: PM1_CNT, 2 bytes. */
  readonly controlBlock: number;
  readonly sciIrq: number;
}

/** What the FADT points at besides the DSDT. */
export interface FadtHardware {
  /** The 24-bit PM timer's port. */
  readonly pmTimerPort?: number;
  /**
   * The fixed hardware (power button, sleep control, SCI). Without it the FADT says hardware-reduced, which makes
   * OSes ignore the fixed hardware; with it `facs` is required too.
   */
  readonly pm?: AcpiPmBlocks;
  /** Where the FACS is (FIRMWARE_CTRL; 64-byte aligned, below 4 GiB). */
  readonly facs?: number;
}

/**
 * An ACPI 6 FADT ("FACP"). It points at the DSDT (32- and 64-bit fields) and, when given, the 24-bit PM timer
 * (PM_TMR_BLK and X_PM_TMR_BLK: x86 Linux takes it from the FADT even on hardware-reduced platforms). With `pm` it
 * describes the fixed hardware of an ACPI-only platform (SMI_CMD 0: no legacy mode to leave): the SCI's IRQ, the
 * PM1a event and control blocks in both the legacy and the X_ fields, the FACS, and the fixed-feature power button
 * (PWR_BUTTON clear); without it the platform is hardware-reduced.
 */
export function buildFadt(dsdtAddress: number, hw: FadtHardware = {}): Uint8Array {
  const { pmTimerPort, pm } = hw;
  if (pm && hw.facs === undefined) throw new RangeError("FADT: fixed hardware needs a FACS (hardware-reduced platforms have none)");
  const w = beginSdt("FACP", 6);
  w.u32(pm ? hw.facs! : 0); // 36 FIRMWARE_CTRL
  w.u32(dsdtAddress); // 40 DSDT
  w.u8(0); // 44 reserved
  w.u8(0); // 45 Preferred_PM_Profile: unspecified
  w.u16(pm?.sciIrq ?? 0); // 46 SCI_INT
  w.u32(0); // 48 SMI_CMD: none, the platform is always in ACPI mode
  w.zeros(56 - w.length); // ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
  w.u32(pm?.eventBlock ?? 0); // 56 PM1a_EVT_BLK
  w.u32(0); // 60 PM1b_EVT_BLK
  w.u32(pm?.controlBlock ?? 0); // 64 PM1a_CNT_BLK
  w.zeros(76 - w.length); // PM1b_CNT_BLK, PM2_CNT_BLK
  w.u32(pmTimerPort ?? 0); // 76 PM_TMR_BLK
  w.zeros(88 - w.length); // GPE0_BLK, GPE1_BLK: no general-purpose events
  w.u8(pm ? 4 : 0); // 88 PM1_EVT_LEN
  w.u8(pm ? 2 : 0); // 89 PM1_CNT_LEN
  w.u8(0); // 90 PM2_CNT_LEN
  w.u8(pmTimerPort === undefined ? 0 : 4); // 91 PM_TMR_LEN
  w.zeros(96 - w.length); // GPE0_BLK_LEN, GPE1_BLK_LEN, GPE1_BASE, CST_CNT
  w.u16(pm ? C2_UNSUPPORTED : 0); // 96 P_LVL2_LAT
  w.u16(pm ? C3_UNSUPPORTED : 0); // 98 P_LVL3_LAT
  w.zeros(109 - w.length);
  w.u16(IAPC_BOOT_ARCH); // 109
  w.u8(0); // 111
  w.u32(pm ? Flag.WBINVD | Flag.PROC_C1 | Flag.SLP_BUTTON : Flag.HW_REDUCED_ACPI); // 112 flags
  w.zeros(131 - w.length);
  w.u8(0); // 131 FADT minor version
  w.u64(0); // 132 X_FIRMWARE_CTRL: FIRMWARE_CTRL says it (the FACS is below 4 GiB)
  w.u64(dsdtAddress); // 140 X_DSDT
  gas(w, pm && { port: pm.eventBlock, bits: 32, access: GAS_WORD }); // 148 X_PM1a_EVT_BLK (two 16-bit registers)
  gas(w, undefined); // 160 X_PM1b_EVT_BLK
  gas(w, pm && { port: pm.controlBlock, bits: 16, access: GAS_WORD }); // 172 X_PM1a_CNT_BLK
  w.zeros(208 - w.length); // X_PM1b_CNT_BLK, X_PM2_CNT_BLK
  gas(w, pmTimerPort === undefined ? undefined : { port: pmTimerPort, bits: 32, access: GAS_DWORD }); // 208 X_PM_TMR_BLK
  w.zeros(FADT_SIZE - w.length);
  return finishSdt(w);
}

/** A Generic Address Structure for an I/O port block, or 12 zero bytes: space, bit width, bit offset, access size, address. */
function gas(w: TableWriter, r: { port: number; bits: number; access: number } | undefined): void {
  if (!r) {
    w.zeros(12);
    return;
  }
  w.u8(GAS_SYSTEM_IO).u8(r.bits).u8(0).u8(r.access).u64(r.port);
}
