import { describe, expect, it } from "vitest";
import { CmosRtc, DebugExit, I8042, LineBuffer, PmTimer, RX_QUEUE_LIMIT, Uart16550 } from "./internals.js";
import { Line } from "./irq-line.js";

function uart() {
  const out: number[] = [];
  const irq = new Line();
  const dev = new Uart16550({ output: (b) => out.push(...b), irq });
  return { dev, out, irq };
}

const IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

describe("Uart16550", () => {
  it("transmits THR writes and reports an empty transmitter", () => {
    const { dev, out } = uart();
    for (const c of "hi") dev.write(0, 1, c.charCodeAt(0));
    expect(String.fromCharCode(...out)).toBe("hi");
    expect(dev.read(LSR, 1) & 0x60).toBe(0x60);
  });

  it("overlays the divisor latch while LCR.DLAB is set and keeps the scratch register", () => {
    const { dev, out } = uart();
    dev.write(LCR, 1, 0x83);
    dev.write(0, 1, 0x01);
    dev.write(IER, 1, 0x02);
    expect([dev.read(0, 1), dev.read(IER, 1)]).toEqual([0x01, 0x02]);
    dev.write(LCR, 1, 0x03);
    expect(dev.read(IER, 1)).toBe(0); // IER untouched by the DLM write
    expect(out).toEqual([]); // the DLL write did not transmit
    dev.write(SCR, 1, 0x5a);
    expect(dev.read(SCR, 1)).toBe(0x5a);
  });

  it("raises THRE when enabled, acknowledges it on IIR read, re-arms it after a THR write", () => {
    const { dev, irq } = uart();
    dev.write(MCR, 1, 0x08);
    expect(dev.read(IIR, 1) & 0x0f).toBe(0x01);
    dev.write(IER, 1, 0x02);
    expect(irq.level).toBe(true);
    expect(dev.read(IIR, 1) & 0x0f).toBe(0x02);
    expect(irq.level).toBe(false);
    expect(dev.read(IIR, 1) & 0x0f).toBe(0x01);
    dev.write(0, 1, 0x41);
    expect(irq.level).toBe(true);
    expect(irq.edges).toBe(2);
  });

  it("gates the interrupt line with MCR.OUT2", () => {
    const { dev, irq } = uart();
    dev.write(IER, 1, 0x02);
    expect(irq.level).toBe(false);
    dev.write(MCR, 1, 0x08);
    expect(irq.level).toBe(true);
  });

  it("queues host input, signals RDA ahead of THRE, and drains through RBR", () => {
    const { dev, irq } = uart();
    dev.write(MCR, 1, 0x08);
    dev.write(IER, 1, 0x03);
    dev.input(new Uint8Array([0x61, 0x62]));
    expect(dev.read(LSR, 1) & 1).toBe(1);
    expect(dev.read(IIR, 1) & 0x0f).toBe(0x04);
    expect(dev.read(0, 1)).toBe(0x61);
    expect(dev.read(0, 1)).toBe(0x62);
    expect(dev.read(LSR, 1) & 1).toBe(0);
    expect(dev.read(IIR, 1) & 0x0f).toBe(0x02); // THRE still pending
    expect(dev.read(IIR, 1) & 0x0f).toBe(0x01);
    expect(irq.level).toBe(false);
  });

  it("reports FIFO mode in IIR and clears the receive FIFO on request", () => {
    const { dev } = uart();
    dev.write(IIR, 1, 0x01);
    expect(dev.read(IIR, 1) & 0xc0).toBe(0xc0);
    dev.input(new Uint8Array([1, 2, 3]));
    dev.write(IIR, 1, 0x03);
    expect(dev.read(LSR, 1) & 1).toBe(0);
  });

  it("loops back THR to RBR and MCR to MSR in loopback mode", () => {
    const { dev, out } = uart();
    dev.write(MCR, 1, 0x10 | 0x0a);
    expect(dev.read(MSR, 1) & 0xf0).toBe(0x90);
    dev.write(0, 1, 0x55);
    expect(out).toEqual([]);
    expect(dev.read(0, 1)).toBe(0x55);
    dev.write(MCR, 1, 0);
    expect(dev.read(MSR, 1)).toBe(0xb0);
  });

  it("drops input beyond the queue limit and reports an overrun once", () => {
    const { dev } = uart();
    dev.input(new Uint8Array(RX_QUEUE_LIMIT + 3));
    expect(dev.dropped).toBe(3);
    expect(dev.read(LSR, 1) & 0x02).toBe(0x02);
    expect(dev.read(LSR, 1) & 0x02).toBe(0);
  });

  it("splits wide port accesses into byte registers", () => {
    const { dev } = uart();
    const h = dev;
    h.write(LCR, 1, 0x80);
    h.write(0, 2, 0x0201);
    expect(h.read(0, 2)).toBe(0x0201);
  });
});

describe("I8042", () => {
  it("pulses reset on command 0xFE and answers the self tests", () => {
    let resets = 0;
    const kbd = new I8042(() => resets++);
    expect(kbd.read(4, 1) & 0x01).toBe(0);
    kbd.write(4, 1, 0xaa);
    expect(kbd.read(4, 1) & 0x01).toBe(1);
    expect(kbd.read(0, 1)).toBe(0x55);
    expect(kbd.read(4, 1) & 0x01).toBe(0);
    kbd.write(4, 1, 0x60);
    kbd.write(0, 1, 0x47);
    kbd.write(4, 1, 0x20);
    expect(kbd.read(0, 1)).toBe(0x47);
    expect(resets).toBe(0);
    kbd.write(4, 1, 0xfe);
    expect(resets).toBe(1);
  });
});

describe("CmosRtc", () => {
  const sizes = { baseKiB: 639, extendedBytes: 511 * 1024 * 1024, highBytes: 2 * 1024 * 1024 * 1024 };
  const at = new Date(Date.UTC(2024, 1, 29, 23, 59, 58)); // Thursday

  function read(rtc: CmosRtc, reg: number): number {
    rtc.write(0, 1, reg);
    return rtc.read(1, 1);
  }

  it("reads the host clock in BCD, 24-hour mode by default", () => {
    const rtc = new CmosRtc(sizes, () => at);
    expect([0, 2, 4, 6, 7, 8, 9, 0x32].map((r) => read(rtc, r))).toEqual([0x58, 0x59, 0x23, 5, 0x29, 0x02, 0x24, 0x20]);
    expect(read(rtc, 0x0b)).toBe(0x02);
    expect(read(rtc, 0x0d)).toBe(0x80);
  });

  it("switches to binary and 12-hour mode through status register B", () => {
    const rtc = new CmosRtc(sizes, () => at);
    rtc.write(0, 1, 0x0b);
    rtc.write(1, 1, 0x04);
    expect(read(rtc, 0x02)).toBe(59);
    expect(read(rtc, 0x04)).toBe(0x80 | 11);
  });

  it("ignores writes to the clock and status C/D, masks the NMI bit of the index", () => {
    const rtc = new CmosRtc(sizes, () => at);
    rtc.write(0, 1, 0x80 | 0x00);
    rtc.write(1, 1, 0x11);
    expect(read(rtc, 0)).toBe(0x58);
    rtc.write(0, 1, 0x0d);
    rtc.write(1, 1, 0);
    expect(read(rtc, 0x0d)).toBe(0x80);
    rtc.write(0, 1, 0x40);
    rtc.write(1, 1, 0x99);
    expect(read(rtc, 0x40)).toBe(0x99);
  });

  it("reports memory sizes in the standard registers", () => {
    const rtc = new CmosRtc(sizes, () => at);
    expect(read(rtc, 0x15) | (read(rtc, 0x16) << 8)).toBe(639);
    expect(read(rtc, 0x30) | (read(rtc, 0x31) << 8)).toBe(0xffff); // capped
    expect(read(rtc, 0x34) | (read(rtc, 0x35) << 8)).toBe(((511 - 15) * 1024 * 1024) / 65536);
    expect(read(rtc, 0x5b) | (read(rtc, 0x5c) << 8) | (read(rtc, 0x5d) << 16)).toBe((2 * 1024 * 1024 * 1024) / 65536);
  });
});

describe("DebugExit", () => {
  it("reports the written byte as the exit status", () => {
    const seen: number[] = [];
    const h = new DebugExit((s) => seen.push(s));
    h.write(0, 1, 7);
    h.write(0, 4, 0x1234);
    expect(seen).toEqual([7, 0x34]);
  });
});

describe("LineBuffer (serial output to a stream)", () => {
  it("writes whole lines, caps a line's length, and writes a partial line when the event loop turns", async () => {
    const writes: string[] = [];
    const lines = new LineBuffer((b) => writes.push(Buffer.from(b).toString("latin1")), 8);
    for (const c of "ab\ncd") lines.push(Uint8Array.of(c.charCodeAt(0)));
    expect(writes).toEqual(["ab\n"]);
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual(["ab\n", "cd"]);
    lines.push(Buffer.from("0123456789"));
    expect(writes.slice(2)).toEqual(["01234567"]);
    lines.flush();
    expect(writes.slice(2)).toEqual(["01234567", "89"]);
  });
});

describe("PmTimer", () => {
  it("counts at 3.579545 MHz from zero, wraps at 24 bits, and serves any byte lane", () => {
    let ns = 5_000_000_000n;
    const t = new PmTimer(() => ns);
    expect(t.read(0, 4)).toBe(0);
    ns += 1_000_000_000n; // one second
    expect(t.read(0, 4)).toBe(3_579_545);
    expect(t.read(1, 1)).toBe((3_579_545 >>> 8) & 0xff);
    expect(t.read(2, 2)).toBe(3_579_545 >>> 16);
    ns += 4_000_000_000n; // 5 s = 17,897,725 ticks, past 2^24
    expect(t.read(0, 4)).toBe(17_897_725 - 2 ** 24);
    t.write();
    expect(t.read(0, 4)).toBe(17_897_725 - 2 ** 24);
  });
});

describe("legacy port handlers and bit 31", () => {
  it("a guest's 32-bit accesses with bit 31 set reach every legacy device as bytes and read back unsigned", async () => {
    const { createPortIoSpace } = await import("@vmm/core");
    const { installLegacyDevices } = await import("./internals.js");
    const pio = createPortIoSpace();
    const exits: number[] = [];
    installLegacyDevices({
      pio,
      interrupts: { line: () => new Line(), signal: () => {} } as never,
      serialOutput: () => {},
      memory: { baseKiB: 639, extendedBytes: 63 * 2 ** 20, highBytes: 0 },
      onReset: () => {},
      onDebugExit: (s) => exits.push(s),
      onPowerOff: () => {},
      now: () => new Date(Date.UTC(2030, 0, 2, 3, 4, 5)),
    });
    const ports = [0x3f8, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff, 0x60, 0x64, 0x70, 0x71, 0x80, 0x501, 0x600, 0x601, 0x602, 0x603, 0x604, 0x605];
    for (const value of [0x80000000, 0xffffffff, 0x80000080, 0x7fffffff]) {
      for (const port of ports) {
        // Registered ranges are 1-8 ports wide; an access the space refuses is fine, a signed result is not.
        for (const size of [1, 2, 4] as const) {
          try {
            pio.write(port, size, value);
          } catch {
            continue;
          }
          const r = pio.read(port, size);
          expect(Number.isInteger(r) && r >= 0 && r < 2 ** (8 * size), `port 0x${port.toString(16)}/${size} after 0x${value.toString(16)} read ${r}`).toBe(true);
        }
      }
    }
    for (const s of exits) expect(s >= 0 && s <= 0xff).toBe(true);
  });
});
