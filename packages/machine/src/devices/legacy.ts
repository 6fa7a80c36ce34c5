import type { AddressSpace, InterruptController, Registration } from "@vmm/core";
import { ACPI_PM_PORTS, AcpiPm, SCI_IRQ } from "./acpi-pm.js";
import { CMOS_PORTS, CmosRtc, type CmosMemorySizes } from "./cmos-rtc.js";
import { DEBUG_EXIT_PORT, DebugExit, PostCodePort } from "./debug-exit.js";
import { PM_TIMER_PORT, PmTimer } from "./pm-timer.js";
import { I8042, I8042_PORTS } from "./i8042.js";
import { COM1, Uart16550 } from "./uart16550.js";

export interface LegacyDeviceOptions {
  readonly pio: AddressSpace;
  readonly interrupts: InterruptController;
  readonly serialOutput: (bytes: Uint8Array) => void;
  readonly memory: CmosMemorySizes;
  readonly onReset: () => void;
  readonly onDebugExit: (status: number) => void;
  /** The guest entered ACPI S5 (soft off) through PM1_CNT. */
  readonly onPowerOff: () => void;
  readonly now?: () => Date;
}

export interface LegacyDevices {
  readonly uart: Uart16550;
  readonly i8042: I8042;
  readonly rtc: CmosRtc;
  readonly debugExit: DebugExit;
  readonly postCode: PostCodePort;
  readonly pmTimer: PmTimer;
  /** The ACPI fixed hardware: power button and soft off (PM1 event and control blocks, SCI on IRQ 9). */
  readonly acpiPm: AcpiPm;
  readonly registrations: readonly Registration[];
}

/** The PC devices every guest expects, registered on their fixed ports. */
export function installLegacyDevices(o: LegacyDeviceOptions): LegacyDevices {
  const uart = new Uart16550({ output: o.serialOutput, irq: o.interrupts.line(COM1.irq) });
  const i8042 = new I8042(o.onReset);
  const rtc = new CmosRtc(o.memory, o.now);
  const debugExit = new DebugExit(o.onDebugExit);
  const postCode = new PostCodePort();
  const pmTimer = new PmTimer();
  const acpiPm = new AcpiPm(o.interrupts.line(SCI_IRQ), o.onPowerOff);
  const registrations = [
    o.pio.register(COM1.port, 8, "serial0 (16550A)", uart),
    // The i8042's two ports are 4 apart; one handler sees offsets 0 and 4.
    o.pio.register(I8042_PORTS.data, 1, "i8042", i8042),
    o.pio.register(I8042_PORTS.command, 1, "i8042", {
      read: (_off, size) => i8042.read(4, size),
      write: (_off, size, v) => i8042.write(4, size, v),
    }),
    o.pio.register(CMOS_PORTS.index, 2, "cmos-rtc", rtc),
    o.pio.register(DEBUG_EXIT_PORT, 1, "debug-exit", debugExit),
    o.pio.register(0x80, 1, "post-code", postCode),
    o.pio.register(PM_TIMER_PORT, 4, "acpi-pm-timer", pmTimer),
    o.pio.register(ACPI_PM_PORTS.event, ACPI_PM_PORTS.eventLength, "acpi-pm1-event", acpiPm.eventBlock),
    o.pio.register(ACPI_PM_PORTS.control, ACPI_PM_PORTS.controlLength, "acpi-pm1-control", acpiPm.controlBlock),
  ];
  return { uart, i8042, rtc, debugExit, postCode, pmTimer, acpiPm, registrations };
}
