import { RegisterTable, type RegisterSpec, type RegisterWidth } from "@vmm/core";
import type { DmaAccess } from "../dma/dma-map.js";
import { DmaFault } from "../dma/dma-port.js";
import { ProtocolError } from "../protocol/errors.js";
import type { RegionWindow } from "./region.js";

export const ENGINE_MAGIC = 0x45545556; // "VUTE"
export const ENGINE_SIZE = 0x40;
export const ENGINE_MAX_LENGTH = 1 << 20;
export const CONTROL_EXIT = 0xdead0001;
/** The exit status of a server told to die through CONTROL. */
export const CONTROL_EXIT_STATUS = 3;

export const EngineRegister = {
  MAGIC: 0x00,
  ID: 0x04,
  SRC_LO: 0x08,
  SRC_HI: 0x0c,
  DST_LO: 0x10,
  DST_HI: 0x14,
  LEN: 0x18,
  OP: 0x1c,
  PATTERN: 0x20,
  VECTOR: 0x24,
  DOORBELL: 0x28,
  STATUS: 0x2c,
  COUNT: 0x30,
  IRQS: 0x34,
  SCRATCH: 0x38,
  CONTROL: 0x3c,
} as const;

export const EngineStatus = { DONE: 1 << 0, ERROR: 1 << 1, IRQ: 1 << 2 } as const;
export const EngineDoorbell = { DMA_AND_INTERRUPT: 1, INTERRUPT: 2, DMA: 3 } as const;
export const EngineOp = { COPY: 0, INVERT: 1, ADD: 2 } as const;

/** Client memory as the engine sees it. */
export interface EngineDma {
  check(address: bigint, length: number, access: DmaAccess): string | undefined;
  read(address: bigint, length: number): Uint8Array;
  write(address: bigint, data: Uint8Array): void;
}

/** What the engine needs from its device. */
export interface EngineHost {
  readonly dma: EngineDma;
  /** Raises interrupt `vector` in the device's current mode; says which mode took it. */
  raiseInterrupt(vector: number): "msix" | "msi" | "intx";
  /** Drives the INTx line: asserted by an interrupt raised in INTx mode, deasserted when STATUS.IRQ is cleared. */
  setIntxLevel(level: boolean): void;
  /** Ends the server process at once. */
  exit(status: number): void;
  log(message: string): void;
}

/** The engine's registers (all 32-bit). */
interface EngineState {
  srcLo: number;
  srcHi: number;
  dstLo: number;
  dstHi: number;
  len: number;
  op: number;
  pattern: number;
  vector: number;
  status: number;
  count: number;
  irqs: number;
  scratch: number;
}

const registers: RegisterSpec<TestEngine>[] = [
  { name: "MAGIC", offset: EngineRegister.MAGIC, width: 4, read: () => ENGINE_MAGIC },
  { name: "ID", offset: EngineRegister.ID, width: 4, read: (e) => e.id },
  { name: "SRC_LO", offset: EngineRegister.SRC_LO, width: 4, read: (e) => e.state.srcLo, write: (e, v) => void (e.state.srcLo = v) },
  { name: "SRC_HI", offset: EngineRegister.SRC_HI, width: 4, read: (e) => e.state.srcHi, write: (e, v) => void (e.state.srcHi = v) },
  { name: "DST_LO", offset: EngineRegister.DST_LO, width: 4, read: (e) => e.state.dstLo, write: (e, v) => void (e.state.dstLo = v) },
  { name: "DST_HI", offset: EngineRegister.DST_HI, width: 4, read: (e) => e.state.dstHi, write: (e, v) => void (e.state.dstHi = v) },
  { name: "LEN", offset: EngineRegister.LEN, width: 4, read: (e) => e.state.len, write: (e, v) => void (e.state.len = v) },
  { name: "OP", offset: EngineRegister.OP, width: 4, read: (e) => e.state.op, write: (e, v) => void (e.state.op = v) },
  { name: "PATTERN", offset: EngineRegister.PATTERN, width: 4, read: (e) => e.state.pattern, write: (e, v) => void (e.state.pattern = v) },
  { name: "VECTOR", offset: EngineRegister.VECTOR, width: 4, read: (e) => e.state.vector, write: (e, v) => void (e.state.vector = v) },
  { name: "DOORBELL", offset: EngineRegister.DOORBELL, width: 4, access: "wo", write: (e, v) => e.ring(v) },
  { name: "STATUS", offset: EngineRegister.STATUS, width: 4, read: (e) => e.state.status, write: (e, v) => e.clearStatus(v) },
  { name: "COUNT", offset: EngineRegister.COUNT, width: 4, read: (e) => e.state.count },
  { name: "IRQS", offset: EngineRegister.IRQS, width: 4, read: (e) => e.state.irqs },
  { name: "SCRATCH", offset: EngineRegister.SCRATCH, width: 4, read: (e) => e.state.scratch, write: (e, v) => void (e.state.scratch = v) },
  { name: "CONTROL", offset: EngineRegister.CONTROL, width: 4, access: "wo", write: (e, v) => e.control(v) },
];

const table = new RegisterTable<TestEngine>(registers, { size: ENGINE_SIZE });

function freshState(): EngineState {
  return { srcLo: 0, srcHi: 0, dstLo: 0, dstHi: 0, len: 0, op: 0, pattern: 0, vector: 0, status: 0, count: 0, irqs: 0, scratch: 0 };
}

/**
 * The test engine every simulated device carries: a 64-byte register block that copies, inverts or adds to client
 * memory and raises interrupts, synchronously with the DOORBELL write (the write's reply goes out after the DMA is
 * done and the interrupt signalled).
 */
export class TestEngine implements RegionWindow {
  readonly name = "test-engine";
  readonly size = ENGINE_SIZE;
  state: EngineState = freshState();

  constructor(
    readonly id: number,
    readonly offset: number,
    private readonly host: EngineHost,
  ) {}

  read(offset: number, width: RegisterWidth): number {
    return table.read(this, offset, width);
  }

  write(offset: number, width: RegisterWidth, value: number): void {
    table.write(this, offset, width, value);
  }

  reset(): void {
    if (this.state.status & EngineStatus.IRQ) this.host.setIntxLevel(false);
    this.state = freshState();
  }

  ring(doorbell: number): void {
    switch (doorbell) {
      case EngineDoorbell.DMA_AND_INTERRUPT:
        if (this.transfer()) this.interrupt();
        return;
      case EngineDoorbell.INTERRUPT:
        this.interrupt();
        return;
      case EngineDoorbell.DMA:
        this.transfer();
        return;
      default:
        this.host.log(`test engine: doorbell value ${doorbell} ignored`);
    }
  }

  clearStatus(value: number): void {
    const before = this.state.status;
    this.state.status = before & ~(value & 0x7);
    if (before & EngineStatus.IRQ && !(this.state.status & EngineStatus.IRQ)) this.host.setIntxLevel(false);
  }

  control(value: number): void {
    if (value === CONTROL_EXIT) this.host.exit(CONTROL_EXIT_STATUS);
  }

  /**
   * Reads LEN bytes at SRC, transforms them by OP, writes them at DST: DONE and COUNT on success; ERROR, and
   * nothing written, when any check fails. Says whether it succeeded.
   */
  private transfer(): boolean {
    const { len, op, pattern } = this.state;
    const src = (BigInt(this.state.srcHi) << 32n) | BigInt(this.state.srcLo);
    const dst = (BigInt(this.state.dstHi) << 32n) | BigInt(this.state.dstLo);
    const refuse = (why: string): false => {
      this.host.log(`test engine: error: ${why}`);
      this.state.status |= EngineStatus.ERROR;
      return false;
    };
    if (len === 0 || len > ENGINE_MAX_LENGTH) return refuse(`LEN ${len} is outside 1..${ENGINE_MAX_LENGTH}`);
    if (op !== EngineOp.COPY && op !== EngineOp.INVERT && op !== EngineOp.ADD) return refuse(`OP ${op} is unknown`);
    const problem = this.host.dma.check(src, len, "read") ?? this.host.dma.check(dst, len, "write");
    if (problem) return refuse(problem);
    try {
      const data = this.host.dma.read(src, len);
      transform(data, op, pattern & 0xff);
      this.host.dma.write(dst, data);
    } catch (e) {
      if (e instanceof DmaFault || e instanceof ProtocolError) return refuse(e.message);
      throw e;
    }
    this.state.status |= EngineStatus.DONE;
    this.state.count = (this.state.count + 1) >>> 0;
    return true;
  }

  /** Raises VECTOR in the device's interrupt mode; STATUS.IRQ records it, and drives the line in INTx mode. */
  private interrupt(): void {
    this.state.irqs = (this.state.irqs + 1) >>> 0;
    this.state.status |= EngineStatus.IRQ;
    if (this.host.raiseInterrupt(this.state.vector) === "intx") this.host.setIntxLevel(true);
  }
}

function transform(data: Uint8Array, op: number, operand: number): void {
  if (op === EngineOp.INVERT) for (let i = 0; i < data.length; i++) data[i] = data[i]! ^ 0xff;
  else if (op === EngineOp.ADD) for (let i = 0; i < data.length; i++) data[i] = (data[i]! + operand) & 0xff;
}
