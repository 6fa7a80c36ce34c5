import {
  RegisterTable,
  stateData,
  stateInt,
  type DeviceState,
  type InterruptLine,
  type IoHandler,
  type SmallAccessSize,
  type Snapshottable,
} from "@vmm/core";

/**
 * The ACPI fixed hardware's register blocks (ACPI 6.5, 4.8.3), where ICH9 puts them from PMBASE 0x600 (the PM
 * timer follows at 0x608): the PM1a event block (PM1_STS, PM1_EN) and the PM1a control block (PM1_CNT).
 */
export const ACPI_PM_PORTS = { event: 0x600, eventLength: 4, control: 0x604, controlLength: 2 } as const;

/** The ISA IRQ the SCI is wired to (as on PIIX4 and ICH9): level-triggered, active high (the MADT says so). */
export const SCI_IRQ = 9;

/**
 * The SLP_TYP value that enters S5 (soft off), ICH9's encoding; the DSDT's `\_S5` package gives it to the OS,
 * which writes it with SLP_EN to PM1_CNT. No other sleep state is declared, so no other value means anything.
 */
export const SLEEP_TYPE_S5 = 7;

/** PM1_STS / PM1_EN bits (ACPI 6.5, tables 4.16 and 4.17). */
export const Pm1Event = {
  TMR: 1 << 0,
  BM_STS: 1 << 4,
  GBL: 1 << 5,
  PWRBTN: 1 << 8,
  SLPBTN: 1 << 9,
  RTC: 1 << 10,
  PCIEXP_WAKE: 1 << 14,
  WAK_STS: 1 << 15,
} as const;

/** PM1_CNT bits (ACPI 6.5, table 4.18). */
export const Pm1Control = {
  SCI_EN: 1 << 0,
  BM_RLD: 1 << 1,
  GBL_RLS: 1 << 2,
  SLP_TYP_SHIFT: 10,
  SLP_TYP_MASK: 7 << 10,
  SLP_EN: 1 << 13,
} as const;

/** Enable bits the OS may set. Only the power button ever raises its status bit; the others simply stay quiet. */
const ENABLE_BITS = Pm1Event.TMR | Pm1Event.GBL | Pm1Event.PWRBTN | Pm1Event.SLPBTN | Pm1Event.RTC | Pm1Event.PCIEXP_WAKE;
/** Status bits the OS clears by writing 1. */
const STATUS_BITS = Pm1Event.TMR | Pm1Event.BM_STS | Pm1Event.GBL | Pm1Event.PWRBTN | Pm1Event.SLPBTN | Pm1Event.RTC | Pm1Event.PCIEXP_WAKE | Pm1Event.WAK_STS;
/** Events that raise the SCI when both their status and enable bits are set (PCIEXP_WAKE's enable bit is a disable). */
const SCI_EVENTS = Pm1Event.TMR | Pm1Event.GBL | Pm1Event.PWRBTN | Pm1Event.SLPBTN | Pm1Event.RTC;
/** PM1_CNT bits that keep what is written. SCI_EN is the hardware's (always 1: no SMI_CMD, no legacy mode). */
const CONTROL_BITS = Pm1Control.BM_RLD | Pm1Control.SLP_TYP_MASK;

interface Pm1Registers {
  status: number;
  enable: number;
  control: number;
}

const STATE_VERSION = 1;
const WHAT = "acpi-pm";

/**
 * The ACPI fixed-feature power button and soft-off (ACPI 6.5, 4.8.2 and 4.8.3): PM1_STS (write-1-to-clear) and
 * PM1_EN at the event block, PM1_CNT at the control block. `powerButton()` sets PWRBTN_STS; while PWRBTN_EN is set
 * the SCI line is asserted until the OS clears the status. The platform is ACPI-only (the FADT has no SMI_CMD), so
 * SCI_EN reads 1 and cannot be cleared. Writing SLP_EN with the S5 sleep type powers the machine off.
 */
export class AcpiPm implements Snapshottable {
  private static readonly EVENT_BLOCK = new RegisterTable<Pm1Registers>([
    { name: "PM1_STS", offset: 0, width: 2, access: "w1c", field: "status", mask: STATUS_BITS },
    { name: "PM1_EN", offset: 2, width: 2, field: "enable", mask: ENABLE_BITS },
  ]);
  private static readonly CONTROL_BLOCK = new RegisterTable<AcpiPm>([
    { name: "PM1_CNT", offset: 0, width: 2, read: (pm) => pm.registers.control | Pm1Control.SCI_EN, write: (pm, v) => pm.writeControl(v) },
  ]);

  private readonly registers: Pm1Registers = { status: 0, enable: 0, control: 0 };

  constructor(
    private readonly sci: InterruptLine,
    /** The OS entered S5 (soft off). */
    private readonly onPowerOff: () => void,
  ) {}

  /** The event block's handler (ACPI_PM_PORTS.event, 4 ports). */
  readonly eventBlock: IoHandler = {
    read: (offset: number, size: SmallAccessSize) => AcpiPm.EVENT_BLOCK.read(this.registers, offset, size),
    write: (offset: number, size: SmallAccessSize, value: number) => {
      AcpiPm.EVENT_BLOCK.write(this.registers, offset, size, value);
      this.updateSci();
    },
  };

  /** The control block's handler (ACPI_PM_PORTS.control, 2 ports). */
  readonly controlBlock: IoHandler = AcpiPm.CONTROL_BLOCK.handler(this);

  /**
   * Presses the power button: sets PWRBTN_STS (which stays set until the OS clears it). Returns whether the OS
   * listens, i.e. it enabled the event, so the SCI now tells it; an OS that has not (yet) will not react.
   */
  powerButton(): boolean {
    this.registers.status |= Pm1Event.PWRBTN;
    this.updateSci();
    return (this.registers.enable & Pm1Event.PWRBTN) !== 0;
  }

  /** Whether the SCI is asserted now. */
  get sciLevel(): boolean {
    return (this.registers.status & this.registers.enable & SCI_EVENTS) !== 0;
  }

  saveState(): DeviceState {
    const { status, enable, control } = this.registers;
    return { version: STATE_VERSION, data: { status, enable, control } };
  }

  restoreState(state: DeviceState): void {
    const data = stateData(state, WHAT, STATE_VERSION);
    const status = stateInt(data, "status", WHAT, 0, 0xffff) & STATUS_BITS;
    const enable = stateInt(data, "enable", WHAT, 0, 0xffff) & ENABLE_BITS;
    const control = stateInt(data, "control", WHAT, 0, 0xffff) & CONTROL_BITS;
    Object.assign(this.registers, { status, enable, control });
    this.updateSci();
  }

  private writeControl(value: number): void {
    this.registers.control = value & CONTROL_BITS;
    const sleepType = (value & Pm1Control.SLP_TYP_MASK) >> Pm1Control.SLP_TYP_SHIFT;
    if (value & Pm1Control.SLP_EN && sleepType === SLEEP_TYPE_S5) this.onPowerOff();
  }

  private updateSci(): void {
    this.sci.set(this.sciLevel);
  }
}

/** What the firmware tables say of this hardware (PlatformDescription.acpiPm). */
export const ACPI_PM_PLATFORM = {
  eventBlock: ACPI_PM_PORTS.event,
  controlBlock: ACPI_PM_PORTS.control,
  sciIrq: SCI_IRQ,
  s5SleepType: SLEEP_TYPE_S5,
} as const;
