import { type DeviceState, type InterruptLine, type IoHandler, type RegisterSpec, RegisterTable, type SmallAccessSize, type Snapshottable, stateData, stateInt } from "@vmm/core";
import { stateBool, stateIntList } from "../snapshot/fields.js";

export const COM1 = { port: 0x3f8, irq: 4 } as const;

const IER_RDA = 0x01;
const IER_THRE = 0x02;
const IIR_NONE = 0x01;
const IIR_THRE = 0x02;
const IIR_RDA = 0x04;
const IIR_FIFO = 0xc0;
const FCR_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;
const LCR_DLAB = 0x80;
const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
/** Without loopback the modem lines read as carrier, data set ready and clear to send. */
const MSR_IDLE = 0xb0;
/** Bytes queued from the host before further input is dropped (counted as overruns). */
export const RX_QUEUE_LIMIT = 4096;

export interface UartOptions {
  /** Transmitted bytes go here (stdout, or a test's collector). */
  readonly output: (bytes: Uint8Array) => void;
  readonly irq?: InterruptLine;
}

interface UartState {
  ier: number;
  lcr: number;
  mcr: number;
  scr: number;
  fcr: number;
  dll: number;
  dlm: number;
  /** THRE interrupt latched since the transmitter last emptied (cleared by IIR read or THR write). */
  threPending: boolean;
  overrun: boolean;
  rx: number[];
}

/**
 * A 16550A UART: transmit goes straight to the output; receive is a host-fed queue. The interrupt line follows
 * the IIR (RDA before THRE before modem status) gated by MCR.OUT2 as on a PC.
 */
export class Uart16550 implements IoHandler, Snapshottable {
  private readonly s: UartState = { ier: 0, lcr: 0x03, mcr: 0, scr: 0, fcr: 0, dll: 12, dlm: 0, threPending: false, overrun: false, rx: [] };
  private readonly txByte = new Uint8Array(1);
  /** Host bytes dropped because the receive queue was full. */
  dropped = 0;

  constructor(private readonly options: UartOptions) {}

  /** Byte registers for DLAB=0; a wider access reaches consecutive registers, low first, as on the ISA bus. */
  private readonly registers: readonly RegisterSpec<UartState>[] = [
    { name: "RBR/THR", offset: 0, width: 1, read: () => this.receive(), write: (_s, v) => this.transmit(v) },
    { name: "IER", offset: 1, width: 1, field: "ier", write: (_s, v) => this.setIer(v & 0x0f) },
    { name: "IIR/FCR", offset: 2, width: 1, read: () => this.readIir(), write: (_s, v) => this.setFcr(v) },
    { name: "LCR", offset: 3, width: 1, field: "lcr" },
    { name: "MCR", offset: 4, width: 1, field: "mcr", write: (s, v) => ((s.mcr = v & 0x1f), this.update()) },
    { name: "LSR", offset: 5, width: 1, read: (s) => this.readLsr(s) },
    { name: "MSR", offset: 6, width: 1, read: (s) => this.readMsr(s) },
    { name: "SCR", offset: 7, width: 1, field: "scr" },
  ];
  private readonly normal = new RegisterTable<UartState>(this.registers, { fill: 0xff });
  /** DLAB=1 overlays offsets 0 and 1 with the divisor latch. */
  private readonly divisorLatch = new RegisterTable<UartState>(
    [{ name: "DLL", offset: 0, width: 1, field: "dll" }, { name: "DLM", offset: 1, width: 1, field: "dlm" }, ...this.registers.slice(2)],
    { fill: 0xff },
  );

  private table(): RegisterTable<UartState> {
    return this.s.lcr & LCR_DLAB ? this.divisorLatch : this.normal;
  }

  read(offset: number, size: SmallAccessSize): number {
    return this.table().read(this.s, offset, size);
  }

  write(offset: number, size: SmallAccessSize, value: number): void {
    this.table().write(this.s, offset, size, value);
  }

  /** Queues bytes from the host (stdin) for the guest to read. */
  input(bytes: Uint8Array): void {
    for (const b of bytes) {
      if (this.s.rx.length >= RX_QUEUE_LIMIT) {
        this.dropped++;
        this.s.overrun = true;
      } else this.s.rx.push(b);
    }
    this.update();
  }

  saveState(): DeviceState {
    const { rx, ...registers } = this.s;
    return { version: 1, data: { ...registers, rx: [...rx] } };
  }

  /** Restores the registers and the receive queue, and drives the interrupt line to match them. */
  restoreState(state: DeviceState): void {
    const what = "serial0 (16550A)";
    const d = stateData(state, what, 1);
    const byte = (key: string) => stateInt(d, key, what, 0, 255);
    Object.assign(this.s, {
      ier: byte("ier") & 0x0f,
      lcr: byte("lcr"),
      mcr: byte("mcr") & 0x1f,
      scr: byte("scr"),
      fcr: byte("fcr"),
      dll: byte("dll"),
      dlm: byte("dlm"),
      threPending: stateBool(d, "threPending", what),
      overrun: stateBool(d, "overrun", what),
      rx: stateIntList(d, "rx", what, 0, 255, RX_QUEUE_LIMIT),
    });
    this.update();
  }

  /** The interrupt the IIR reports now (IIR_NONE when nothing is pending and enabled). */
  private pendingInterrupt(): number {
    const s = this.s;
    if (s.ier & IER_RDA && s.rx.length > 0) return IIR_RDA;
    if (s.ier & IER_THRE && s.threPending) return IIR_THRE;
    return IIR_NONE;
  }

  private update(): void {
    const asserted = this.pendingInterrupt() !== IIR_NONE && (this.s.mcr & MCR_OUT2) !== 0;
    this.options.irq?.set(asserted);
  }

  private transmit(v: number): void {
    const s = this.s;
    if (s.mcr & MCR_LOOP) {
      if (s.rx.length < RX_QUEUE_LIMIT) s.rx.push(v);
    } else {
      this.txByte[0] = v;
      this.options.output(this.txByte.slice());
    }
    // The byte leaves at once, so the holding register is empty again: THRE re-arms.
    s.threPending = true;
    this.update();
  }

  private receive(): number {
    const v = this.s.rx.shift() ?? 0;
    this.update();
    return v;
  }

  private setIer(v: number): void {
    // Enabling THRE while the transmitter is empty raises the interrupt immediately, like the real part.
    if (v & IER_THRE && !(this.s.ier & IER_THRE)) this.s.threPending = true;
    this.s.ier = v;
    this.update();
  }

  private setFcr(v: number): void {
    this.s.fcr = v & FCR_ENABLE ? v & 0xc9 : 0;
    if (v & FCR_CLEAR_RX) this.s.rx.length = 0;
    this.update();
  }

  private readIir(): number {
    const id = this.pendingInterrupt();
    // Reading the IIR while it reports THRE acknowledges that interrupt.
    if (id === IIR_THRE) {
      this.s.threPending = false;
      this.update();
    }
    return id | (this.s.fcr & FCR_ENABLE ? IIR_FIFO : 0);
  }

  private readLsr(s: UartState): number {
    const v = LSR_THRE | LSR_TEMT | (s.rx.length > 0 ? LSR_DR : 0) | (s.overrun ? LSR_OE : 0);
    s.overrun = false;
    return v;
  }

  private readMsr(s: UartState): number {
    if (!(s.mcr & MCR_LOOP)) return MSR_IDLE;
    // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
    const m = s.mcr;
    return ((m & 1) << 5) | ((m & 2) << 3) | ((m & 4) << 4) | ((m & 8) << 4);
  }
}
