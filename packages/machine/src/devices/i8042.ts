import { type DeviceState, type InterruptLine, type IoHandler, RegisterTable, type SmallAccessSize, type Snapshottable, SnapshotError, decodeBytes, encodeBytes, stateData, stateInt } from "@vmm/core";
import { stateBool, stateIntList, stateObject, stateOptionalInt } from "../snapshot/fields.js";
import { Ps2Keyboard } from "./ps2-keyboard.js";
import { SET2_BREAK_PREFIX, TRANSLATE_SET2_TO_SET1 } from "./scancodes.js";

export const I8042_PORTS = { data: 0x60, command: 0x64 } as const;
/** ISA IRQ of the keyboard port. */
export const I8042_KEYBOARD_IRQ = 1;

/** Status register (port 0x64 reads). IBF is never set: a write is processed before the guest's next access. */
export const I8042Status = {
  OBF: 0x01, // output buffer full: a byte waits at 0x60
  IBF: 0x02,
  SYS: 0x04, // mirrors the command byte's system flag
  A2: 0x08, // the last write went to 0x64 (a command), not 0x60
  UNLOCKED: 0x10, // keyboard not inhibited by the key lock
  AUX_OBF: 0x20, // never set: there is no aux (mouse) port
} as const;

/** Command byte (controller RAM byte 0). */
export const I8042Config = {
  KBD_INT: 0x01,
  AUX_INT: 0x02,
  SYS: 0x04,
  KBD_DISABLED: 0x10,
  AUX_DISABLED: 0x20,
  TRANSLATE: 0x40,
} as const;

/** Output port (0xD0/0xD1): bit 0 is the CPU reset line (active low), bit 1 the A20 gate. */
export const I8042OutputPort = {
  RESET_HIGH: 0x01,
  A20: 0x02,
  KBD_OBF: 0x10,
} as const;

const DEFAULT_CONFIG = I8042Config.KBD_INT | I8042Config.SYS | I8042Config.AUX_DISABLED | I8042Config.TRANSLATE;
const DEFAULT_OUTPUT_PORT = I8042OutputPort.RESET_HIGH | I8042OutputPort.A20;
/** Controller answers waiting for the output buffer (commands answer at most a few bytes). */
const CONTROLLER_QUEUE_LIMIT = 4;

/** One controller command (a write to port 0x64): what it does now, and what its data byte does, if it takes one. */
interface ControllerCommand {
  readonly name: string;
  readonly run?: (c: I8042, command: number) => void;
  readonly data?: (c: I8042, value: number, command: number) => void;
}

const answer = (value: number) => (c: I8042) => c.answer(value);

const FIXED_COMMANDS: ReadonlyMap<number, ControllerCommand> = new Map<number, ControllerCommand>([
  [0xa7, { name: "disable aux", run: (c) => c.setConfigBits(I8042Config.AUX_DISABLED, true) }],
  // No aux port: enabling it leaves AUX_DISABLED set, which is how guests tell that there is no mouse.
  [0xa8, { name: "enable aux (absent)" }],
  [0xa9, { name: "test aux (clock line stuck: no device)", run: answer(0x01) }],
  [0xaa, { name: "self test", run: (c) => (c.setConfigBits(I8042Config.SYS, true), c.answer(0x55)) }],
  [0xab, { name: "test keyboard interface", run: answer(0x00) }],
  [0xad, { name: "disable keyboard", run: (c) => c.setConfigBits(I8042Config.KBD_DISABLED, true) }],
  [0xae, { name: "enable keyboard", run: (c) => c.setConfigBits(I8042Config.KBD_DISABLED, false) }],
  [0xc0, { name: "read input port", run: answer(0x80) }], // keyboard not inhibited
  [0xd0, { name: "read output port", run: (c) => c.answer(c.outputPortValue()) }],
  [0xd1, { name: "write output port", data: (c, v) => c.writeOutputPort(v) }],
  [0xd2, { name: "write keyboard output buffer", data: (c, v) => c.answer(v) }],
  [0xd3, { name: "write aux output buffer (absent)", data: () => {} }],
  [0xd4, { name: "write to aux device (absent)", data: () => {} }],
  [0xe0, { name: "read test inputs", run: answer(0x00) }],
]);

const READ_RAM: ControllerCommand = { name: "read controller RAM", run: (c, cmd) => c.answer(c.ramByte(cmd & 0x1f)) };
const WRITE_RAM: ControllerCommand = { name: "write controller RAM", data: (c, v, cmd) => c.writeRam(cmd & 0x1f, v) };
// 0xF0-0xFF pulse the output port lines whose bits (0-3) are clear; bit 0 is the CPU reset (0xFE).
const PULSE: ControllerCommand = { name: "pulse output lines", run: (c, cmd) => (cmd & 0x01 ? undefined : c.resetCpu()) };
const IGNORED: ControllerCommand = { name: "unsupported (ignored)" };

function commandFor(value: number): ControllerCommand {
  if (value >= 0x20 && value <= 0x3f) return READ_RAM;
  if (value >= 0x60 && value <= 0x7f) return WRITE_RAM;
  if (value >= 0xf0) return PULSE;
  return FIXED_COMMANDS.get(value) ?? IGNORED;
}

export interface I8042Options {
  /** ISA IRQ 1 (edge-triggered at the IOAPIC: it follows "a byte waits and the keyboard interrupt is on"). */
  readonly irq?: InterruptLine;
  readonly keyboard?: Ps2Keyboard;
}

/**
 * The i8042 keyboard controller with a PS/2 keyboard on its first port and no aux (mouse) port. Offsets:
 * 0 = port 0x60 (data), 4 = port 0x64 (status / command). Keyboard bytes reach the one-byte output buffer
 * when it is empty and the keyboard interface is enabled, translated from set 2 to set 1 while the command
 * byte's TRANSLATE bit is set; controller answers go first. The CPU reset line (0xFE, or an output port
 * write with bit 0 clear) stops the VM through `onReset`.
 */
export class I8042 implements IoHandler, Snapshottable {
  /** Port 0x60 at offset 0, port 0x64 at offset 4; other bytes read 0xff. */
  private static readonly PORTS = new RegisterTable<I8042>(
    [
      { name: "DATA", offset: 0, width: 1, read: (c) => c.readData(), write: (c, v) => c.writeData(v) },
      { name: "STATUS/COMMAND", offset: 4, width: 1, read: (c) => c.readStatus(), write: (c, v) => c.writeCommand(v) },
    ],
    { size: 8, fill: 0xff },
  );
  readonly keyboard: Ps2Keyboard;
  /** Controller commands the model does not implement (accepted and ignored). */
  ignoredCommands = 0;
  private readonly ram = new Uint8Array(32);
  private outputPort = DEFAULT_OUTPUT_PORT;
  private output: number | undefined;
  private lastOutput = 0;
  private readonly answers: number[] = [];
  private pending: { command: ControllerCommand; code: number } | undefined;
  private lastWasCommand = false;
  private breakPrefix = false;
  private irq: InterruptLine | undefined;

  constructor(
    private readonly onReset: () => void,
    options: I8042Options = {},
  ) {
    this.ram[0] = DEFAULT_CONFIG;
    this.irq = options.irq;
    this.keyboard = options.keyboard ?? new Ps2Keyboard();
    this.keyboard.onData = () => this.fill();
  }

  /** Connects ISA IRQ 1 (the machine does this after creating its interrupt controller). */
  connectIrq(line: InterruptLine): void {
    this.irq = line;
    this.updateIrq();
  }

  get config(): number {
    return this.ram[0]!;
  }

  read(offset: number, size: SmallAccessSize): number {
    return I8042.PORTS.read(this, offset, size);
  }

  write(offset: number, size: SmallAccessSize, value: number): void {
    I8042.PORTS.write(this, offset, size, value);
  }

  saveState(): DeviceState {
    return {
      version: 1,
      data: {
        ram: encodeBytes(this.ram),
        outputPort: this.outputPort,
        output: this.output ?? null,
        lastOutput: this.lastOutput,
        answers: [...this.answers],
        pending: this.pending?.code ?? null,
        lastWasCommand: this.lastWasCommand,
        breakPrefix: this.breakPrefix,
        keyboard: this.keyboard.saveState() as unknown as DeviceState["data"],
      },
    };
  }

  /** Restores the controller and its keyboard, and drives IRQ 1 to match the output buffer. */
  restoreState(state: DeviceState): void {
    const what = "i8042";
    const d = stateData(state, what, 1);
    const keyboard = stateObject(d, "keyboard", what);
    this.keyboard.restoreState({ version: stateInt(keyboard, "version", what, 0, 2 ** 31), data: keyboard.data ?? null });
    this.ram.set(decodeBytes(d.ram, `${what}: ram`, this.ram.length));
    const byte = (key: string) => stateInt(d, key, what, 0, 255);
    this.outputPort = byte("outputPort");
    this.output = stateOptionalInt(d, "output", what, 0, 255);
    this.lastOutput = byte("lastOutput");
    this.answers.splice(0, this.answers.length, ...stateIntList(d, "answers", what, 0, 255, CONTROLLER_QUEUE_LIMIT));
    const pending = stateOptionalInt(d, "pending", what, 0, 255);
    const command = pending === undefined ? undefined : commandFor(pending);
    if (command && !command.data) throw new SnapshotError(`${what}: command 0x${pending!.toString(16)} takes no data byte`);
    this.pending = command && { command, code: pending! };
    this.lastWasCommand = stateBool(d, "lastWasCommand", what);
    this.breakPrefix = stateBool(d, "breakPrefix", what);
    this.updateIrq();
  }

  private readData(): number {
    const v = this.output ?? this.lastOutput; // an empty buffer reads the last byte again
    this.output = undefined;
    this.updateIrq(); // the line drops; the next byte (if any) raises it again: one edge per byte
    this.fill();
    return v;
  }

  private readStatus(): number {
    let status = I8042Status.UNLOCKED;
    if (this.output !== undefined) status |= I8042Status.OBF;
    if (this.config & I8042Config.SYS) status |= I8042Status.SYS;
    if (this.lastWasCommand) status |= I8042Status.A2;
    return status;
  }

  private writeData(value: number): void {
    this.lastWasCommand = false;
    const pending = this.pending;
    this.pending = undefined;
    if (pending) pending.command.data!(this, value, pending.code);
    else this.keyboard.write(value);
  }

  private writeCommand(value: number): void {
    this.lastWasCommand = true;
    const command = commandFor(value);
    this.pending = command.data ? { command, code: value } : undefined;
    if (command === IGNORED) this.ignoredCommands++;
    command.run?.(this, value);
  }

  // ---- used by the command table ----

  /** Queues a controller answer for the output buffer. */
  answer(value: number): void {
    if (this.answers.length >= CONTROLLER_QUEUE_LIMIT) this.answers.shift();
    this.answers.push(value & 0xff);
    this.fill();
  }

  ramByte(index: number): number {
    return this.ram[index]!;
  }

  writeRam(index: number, value: number): void {
    this.ram[index] = value;
    if (index === 0) this.fill();
  }

  setConfigBits(bits: number, on: boolean): void {
    this.writeRam(0, on ? this.config | bits : this.config & ~bits);
  }

  outputPortValue(): number {
    return (this.outputPort & ~I8042OutputPort.KBD_OBF) | (this.output !== undefined ? I8042OutputPort.KBD_OBF : 0);
  }

  writeOutputPort(value: number): void {
    this.outputPort = value | I8042OutputPort.RESET_HIGH;
    if (!(value & I8042OutputPort.RESET_HIGH)) this.resetCpu();
  }

  resetCpu(): void {
    this.onReset();
  }

  // ---- output buffer ----

  /** Moves the next byte into an empty output buffer: controller answers first, then (enabled) keyboard bytes. */
  private fill(): void {
    while (this.output === undefined) {
      if (this.answers.length) {
        this.setOutput(this.answers.shift()!);
        break;
      }
      if (this.config & I8042Config.KBD_DISABLED || !this.keyboard.hasData) break;
      const b = this.keyboard.next()!;
      if (!(this.config & I8042Config.TRANSLATE)) {
        this.setOutput(b);
        break;
      }
      if (b === SET2_BREAK_PREFIX) {
        this.breakPrefix = true;
        continue;
      }
      const t = TRANSLATE_SET2_TO_SET1.get(b) ?? b;
      this.setOutput(this.breakPrefix ? t | 0x80 : t);
      this.breakPrefix = false;
    }
    this.updateIrq();
  }

  private setOutput(value: number): void {
    this.output = value;
    this.lastOutput = value;
  }

  private updateIrq(): void {
    this.irq?.set(this.output !== undefined && (this.config & I8042Config.KBD_INT) !== 0);
  }
}
