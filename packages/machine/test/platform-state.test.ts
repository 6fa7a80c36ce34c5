// The platform devices' snapshot state: saved mid-conversation, passed through JSON, restored into a fresh copy
// that then behaves as the original would have; damaged state is refused with a SnapshotError.
import { SnapshotError, type DeviceState } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { CmosRtc, I8042, PmTimer, ResetControl, Uart16550 } from "./internals.js";
import { Line } from "./irq-line.js";

const viaJson = (s: DeviceState): DeviceState => JSON.parse(JSON.stringify(s)) as DeviceState;
const IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, SCR = 7;

describe("platform device state", () => {
  it("serial0: registers, the divisor latch and queued input come back, and the restored IRQ line is asserted", () => {
    const out: number[] = [];
    const a = new Uart16550({ output: (b) => out.push(...b), irq: new Line() });
    a.write(LCR, 1, 0x83); // DLAB
    a.write(0, 1, 3);
    a.write(LCR, 1, 0x03);
    a.write(MCR, 1, 0x0b);
    a.write(IER, 1, 0x01);
    a.write(SCR, 1, 0x5a);
    a.input(new TextEncoder().encode("xyz"));
    expect(a.read(0, 1)).toBe(0x78);
    const irq = new Line();
    const b = new Uart16550({ output: (bytes) => out.push(...bytes), irq });
    b.restoreState(viaJson(a.saveState()));
    expect(irq.level).toBe(true);
    expect([b.read(0, 1), b.read(0, 1)]).toEqual([0x79, 0x7a]);
    expect(irq.level).toBe(false);
    expect(b.read(SCR, 1)).toBe(0x5a);
    expect(b.read(LSR, 1) & 1).toBe(0);
    b.write(LCR, 1, 0x83);
    expect(b.read(0, 1)).toBe(3);
    expect(b.read(IIR, 1) & 0x0f).toBe(1);
  });

  it("i8042: a half-done controller command and keyboard bytes waiting are taken up where they were", () => {
    const a = new I8042(() => {}, { irq: new Line() });
    a.write(4, 1, 0x60); // write the command byte: waits for its data byte
    a.keyboard.write(0xf2); // identify: ACK and two ID bytes queued
    const irq = new Line();
    const b = new I8042(() => {}, { irq });
    b.restoreState(viaJson(a.saveState()));
    const readAll = (c: I8042) => {
      const bytes: number[] = [];
      while (c.read(4, 1) & 1) bytes.push(c.read(0, 1));
      return bytes;
    };
    expect(readAll(b)).toEqual(readAll(a));
    b.write(0, 1, 0x45); // the data byte of the pending command
    a.write(0, 1, 0x45);
    expect(b.config).toBe(0x45);
    expect(b.config).toBe(a.config);
  });

  it("cmos-rtc keeps its NVRAM and index; reset-control its value", () => {
    const a = new CmosRtc({ baseKiB: 640, extendedBytes: 64 << 20, highBytes: 0 });
    a.write(0, 1, 0x40);
    a.write(1, 1, 0x99);
    a.write(0, 1, 0x41);
    const b = new CmosRtc({ baseKiB: 0, extendedBytes: 0, highBytes: 0 });
    b.restoreState(viaJson(a.saveState()));
    expect(b.read(1, 1)).toBe(a.read(1, 1));
    b.write(0, 1, 0x40);
    expect(b.read(1, 1)).toBe(0x99);
    b.write(0, 1, 0x17);
    a.write(0, 1, 0x17);
    expect(b.read(1, 1)).toBe(a.read(1, 1));
    const r = new ResetControl(() => {});
    r.write(0x02);
    const r2 = new ResetControl(() => {});
    r2.restoreState(viaJson(r.saveState()));
    expect(r2.read()).toBe(0x02);
  });

  it("acpi-pm-timer counts on from the saved count, not from zero", () => {
    let now = 1_000_000_000n;
    const a = new PmTimer(() => now);
    now += 2_000_000n; // 2 ms: 7159 ticks
    const saved = viaJson(a.saveState());
    now += 5_000_000_000n; // time passes before the restore
    const b = new PmTimer(() => now);
    b.restoreState(saved);
    expect(b.count()).toBe(7159);
    now += 1_000_000n;
    expect(b.count()).toBe(Math.floor((3_000_000 * 3_579_545) / 1e9));
  });

  it("refuses damaged state with a SnapshotError naming the device and the field", () => {
    const uart = new Uart16550({ output: () => {} });
    const good = uart.saveState();
    const data = good.data as Record<string, unknown>;
    expect(() => uart.restoreState({ version: 2, data: good.data })).toThrow("serial0 (16550A): saved state version 2, this build reads version 1");
    expect(() => uart.restoreState({ version: 1, data: { ...data, lcr: 256 } })).toThrow("serial0 (16550A): lcr must be an integer in [0, 255], got 256");
    expect(() => uart.restoreState({ version: 1, data: { ...data, rx: new Array(5000).fill(0) } })).toThrow(SnapshotError);
    const kbd = new I8042(() => {});
    const k = kbd.saveState();
    expect(() => kbd.restoreState({ version: 1, data: { ...(k.data as object), pending: 0x20 } })).toThrow("i8042: command 0x20 takes no data byte");
    expect(() => new CmosRtc({ baseKiB: 0, extendedBytes: 0, highBytes: 0 }).restoreState({ version: 1, data: { index: 1, nvram: "AAAA" } })).toThrow("cmos-rtc: nvram: 3 bytes, expected 128");
    expect(() => new PmTimer().restoreState({ version: 1, data: { elapsedNs: "-5" } })).toThrow(SnapshotError);
  });
});
