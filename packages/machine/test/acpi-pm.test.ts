import { createPortIoSpace, SnapshotError } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { AcpiPm, ACPI_PM_PORTS, installLegacyDevices, Pm1Control, Pm1Event, SCI_IRQ, SLEEP_TYPE_S5 } from "./internals.js";
import { Line } from "./irq-line.js";

const PM1_STS = 0;
const PM1_EN = 2;

function pm() {
  const sci = new Line();
  let powerOffs = 0;
  const dev = new AcpiPm(sci, () => powerOffs++);
  return { dev, sci, powerOffs: () => powerOffs, ev: dev.eventBlock, cnt: dev.controlBlock };
}

const sleep = (type: number, enable = true) => (type << Pm1Control.SLP_TYP_SHIFT) | (enable ? Pm1Control.SLP_EN : 0);

describe("ACPI PM1 event block (power button)", () => {
  it("a press sets PWRBTN_STS; the SCI follows PWRBTN_EN; writing 1 clears the status and the SCI", () => {
    const { dev, sci, ev } = pm();
    expect(dev.powerButton()).toBe(false); // nobody listens yet
    expect(ev.read(PM1_STS, 2)).toBe(Pm1Event.PWRBTN);
    expect(sci.level).toBe(false);
    ev.write(PM1_EN, 2, Pm1Event.PWRBTN); // the latched press raises the SCI once enabled
    expect(sci.level).toBe(true);
    ev.write(PM1_STS, 2, 0); // writing 0 clears nothing
    expect([ev.read(PM1_STS, 2), sci.level]).toEqual([Pm1Event.PWRBTN, true]);
    ev.write(PM1_STS, 2, Pm1Event.PWRBTN);
    expect([ev.read(PM1_STS, 2), sci.level]).toEqual([0, false]);
    expect(dev.powerButton()).toBe(true);
    expect(sci.level).toBe(true);
    expect(sci.edges).toBe(2);
    ev.write(PM1_EN, 2, 0); // disabling the event drops the SCI, the status stays
    expect([ev.read(PM1_STS, 2), sci.level]).toEqual([Pm1Event.PWRBTN, false]);
  });

  it("takes dword and byte accesses: status in the low half, enable in the high half", () => {
    const { dev, ev } = pm();
    ev.write(0, 4, (Pm1Event.PWRBTN | Pm1Event.GBL) << 16);
    expect(ev.read(PM1_EN, 2)).toBe(Pm1Event.PWRBTN | Pm1Event.GBL);
    dev.powerButton();
    expect(ev.read(0, 4)).toBe((((Pm1Event.PWRBTN | Pm1Event.GBL) << 16) | Pm1Event.PWRBTN) >>> 0);
    expect(ev.read(PM1_STS + 1, 1)).toBe(Pm1Event.PWRBTN >> 8);
    ev.write(PM1_STS + 1, 1, Pm1Event.PWRBTN >> 8); // a byte write of 1 to bit 8 clears it
    expect(ev.read(PM1_STS, 2)).toBe(0);
  });

  it("keeps only defined enable bits; what the OS writes to reserved bits reads back 0", () => {
    const { ev } = pm();
    ev.write(PM1_EN, 2, 0xffff);
    expect(ev.read(PM1_EN, 2)).toBe(Pm1Event.TMR | Pm1Event.GBL | Pm1Event.PWRBTN | Pm1Event.SLPBTN | Pm1Event.RTC | Pm1Event.PCIEXP_WAKE);
    ev.write(PM1_STS, 2, 0xffff); // the OS clears every status bit at start: nothing breaks
    expect(ev.read(PM1_STS, 2)).toBe(0);
  });
});

describe("ACPI PM1 control block (soft off)", () => {
  it("SCI_EN reads 1 and stays set (an ACPI-only platform); SLP_TYP is kept, SLP_EN reads 0", () => {
    const { cnt, powerOffs } = pm();
    expect(cnt.read(0, 2)).toBe(Pm1Control.SCI_EN);
    cnt.write(0, 2, sleep(3, false)); // SLP_TYP alone, as an OS writes it before SLP_EN
    expect(cnt.read(0, 2)).toBe(Pm1Control.SCI_EN | (3 << Pm1Control.SLP_TYP_SHIFT));
    cnt.write(0, 2, 0);
    expect(cnt.read(0, 2)).toBe(Pm1Control.SCI_EN);
    expect(powerOffs()).toBe(0);
  });

  it("SLP_EN with the S5 sleep type powers off; with any other type, or without SLP_EN, nothing happens", () => {
    const { cnt, powerOffs } = pm();
    for (const type of [0, 1, 2, 3, 4, 5, 6, 7].filter((t) => t !== SLEEP_TYPE_S5)) cnt.write(0, 2, sleep(type));
    cnt.write(0, 2, sleep(SLEEP_TYPE_S5, false));
    expect(powerOffs()).toBe(0);
    cnt.write(0, 2, sleep(SLEEP_TYPE_S5) | Pm1Control.SCI_EN);
    expect(powerOffs()).toBe(1);
    expect(cnt.read(0, 2) & Pm1Control.SLP_EN).toBe(0);
    // Linux writes the high byte alone too: SLP_EN is bit 13
    const b = pm();
    b.cnt.write(1, 1, (sleep(SLEEP_TYPE_S5) >> 8) & 0xff);
    expect(b.powerOffs()).toBe(1);
  });
});

describe("ACPI PM state (snapshots)", () => {
  it("saves and restores the registers and drives the SCI at the restored level", () => {
    const a = pm();
    a.ev.write(PM1_EN, 2, Pm1Event.PWRBTN);
    a.cnt.write(0, 2, sleep(2, false));
    a.dev.powerButton();
    const saved = a.dev.saveState();
    expect(JSON.parse(JSON.stringify(saved))).toEqual(saved);
    const b = pm();
    b.dev.restoreState(saved);
    expect([b.ev.read(0, 4), b.cnt.read(0, 2), b.sci.level]).toEqual([a.ev.read(0, 4), a.cnt.read(0, 2), true]);
    expect(b.powerOffs()).toBe(0); // a saved sleep type is not a request
  });

  it("refuses another version or malformed data with a SnapshotError naming the device", () => {
    const { dev } = pm();
    expect(() => dev.restoreState({ version: 2, data: {} })).toThrow(SnapshotError);
    expect(() => dev.restoreState({ version: 1, data: { status: 0, enable: "x", control: 0 } })).toThrow(/acpi-pm: enable must be an integer/);
    expect(() => dev.restoreState({ version: 1, data: [] })).toThrow(/acpi-pm: saved state is not an object/);
  });
});

describe("installLegacyDevices", () => {
  it("puts the PM1 blocks at ICH9's PMBASE layout (0x600, 0x604), the SCI on IRQ 9, and reports S5", () => {
    const pio = createPortIoSpace();
    const lines = new Map<number, Line>();
    const offs: string[] = [];
    const legacy = installLegacyDevices({
      pio,
      interrupts: { line: (gsi) => lines.get(gsi) ?? lines.set(gsi, new Line()).get(gsi)!, signal: () => {} },
      serialOutput: () => {},
      memory: { baseKiB: 639, extendedBytes: 0, highBytes: 0 },
      onReset: () => {},
      onDebugExit: () => {},
      onPowerOff: () => offs.push("off"),
    });
    expect([ACPI_PM_PORTS.event, ACPI_PM_PORTS.control, SCI_IRQ]).toEqual([0x600, 0x604, 9]);
    pio.write(0x602, 2, Pm1Event.PWRBTN);
    expect(legacy.acpiPm.powerButton()).toBe(true);
    expect(lines.get(SCI_IRQ)!.level).toBe(true);
    expect(pio.read(0x600, 2)).toBe(Pm1Event.PWRBTN);
    pio.write(0x604, 2, sleep(SLEEP_TYPE_S5));
    expect(offs).toEqual(["off"]);
  });
});
