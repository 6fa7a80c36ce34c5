import { type DeviceState, SnapshotError, type Snapshottable, stateData, stateInt } from "@vmm/core";
import { stateBool, stateIntList, stateOptionalInt } from "../snapshot/fields.js";
import { type KeyName, type ScancodeSet, scancodes } from "./scancodes.js";

/** Bytes the keyboard sends in answer to commands. */
export const KbdReply = {
  ack: 0xfa,
  resend: 0xfe,
  selfTestPassed: 0xaa,
  echo: 0xee,
} as const;

/** The identify answer of an MF2 keyboard (after the ack). */
export const KEYBOARD_ID = [0xab, 0x83] as const;
/** Bytes the keyboard buffers for the controller; key events that do not fit whole are dropped. */
export const KEYBOARD_QUEUE_LIMIT = 32;
const DEFAULT_TYPEMATIC = 0x2b; // 10.9 characters/s after 500 ms

interface KeyboardState {
  set: ScancodeSet;
  scanning: boolean;
  leds: number;
  typematic: number;
}

/** One keyboard command: its immediate answer, and for commands with an argument byte, what the argument does. */
interface KeyboardCommand {
  readonly name: string;
  readonly run: (kbd: Ps2Keyboard) => readonly number[];
  readonly argument?: (kbd: Ps2Keyboard, value: number) => readonly number[];
}

const ACK = [KbdReply.ack] as const;

/** What the keyboard does with each command byte the guest writes to port 0x60 (when no controller command waits for it). */
const COMMANDS: ReadonlyMap<number, KeyboardCommand> = new Map<number, KeyboardCommand>([
  [0xed, { name: "set LEDs", run: () => ACK, argument: (k, v) => ((k.state.leds = v & 0x07), ACK) }],
  [0xee, { name: "echo", run: () => [KbdReply.echo] }],
  [
    0xf0,
    {
      name: "scan code set",
      run: () => ACK,
      argument: (k, v) => {
        if (v === 0) return [KbdReply.ack, k.state.set];
        if (v === 1 || v === 2) return ((k.state.set = v), ACK);
        return [KbdReply.resend]; // set 3 is not offered
      },
    },
  ],
  [0xf2, { name: "identify", run: () => [KbdReply.ack, ...KEYBOARD_ID] }],
  [0xf3, { name: "typematic rate", run: () => ACK, argument: (k, v) => ((k.state.typematic = v & 0x7f), ACK) }],
  [0xf4, { name: "enable scanning", run: (k) => ((k.state.scanning = true), ACK) }],
  [0xf5, { name: "disable scanning", run: (k) => (k.defaults(false), ACK) }],
  [0xf6, { name: "set defaults", run: (k) => (k.defaults(true), ACK) }],
  [0xff, { name: "reset", run: (k) => (k.defaults(true), [KbdReply.ack, KbdReply.selfTestPassed]) }],
]);

/**
 * A PS/2 (MF2) keyboard as the i8042 sees it: it answers commands, and while scanning sends each key's make
 * and break codes in the selected scan code set (2 by default; the controller usually translates to set 1).
 * Bytes wait in a small queue until the controller takes them (`next`); `onData` tells it that bytes arrived.
 */
export class Ps2Keyboard implements Snapshottable {
  readonly state: KeyboardState = { set: 2, scanning: true, leds: 0, typematic: DEFAULT_TYPEMATIC };
  /** Key events dropped because the queue was full or scanning was off. */
  dropped = 0;
  onData: (() => void) | undefined;
  private readonly queue: number[] = [];
  private awaiting: KeyboardCommand | undefined;
  private lastSent: number = KbdReply.ack;

  /** Whether a byte waits for the controller. */
  get hasData(): boolean {
    return this.queue.length > 0;
  }

  /** The next byte for the controller, or undefined. */
  next(): number | undefined {
    const b = this.queue.shift();
    if (b !== undefined) this.lastSent = b;
    return b;
  }

  /** A byte the host (guest) sent to the keyboard. */
  write(value: number): void {
    const command = COMMANDS.get(value);
    if (this.awaiting && !(value >= 0xed && command)) {
      const argument = this.awaiting.argument!;
      this.awaiting = undefined;
      this.reply(argument(this, value));
      return;
    }
    this.awaiting = undefined;
    if (value === 0xfe) return this.reply([this.lastSent]); // resend
    if (!command) return this.reply([KbdReply.resend]);
    // A command supersedes whatever key codes were still queued, as on a real keyboard.
    this.queue.length = 0;
    if (command.argument) this.awaiting = command;
    this.reply(command.run(this));
  }

  /** A key went down or up; false when it was not sent (scanning disabled, queue full). */
  key(key: KeyName, down: boolean): boolean {
    const bytes = scancodes(key, down, this.state.set);
    if (bytes.length === 0) return true;
    if (!this.state.scanning || this.queue.length + bytes.length > KEYBOARD_QUEUE_LIMIT) {
      this.dropped++;
      return false;
    }
    this.queue.push(...bytes);
    this.onData?.();
    return true;
  }

  saveState(): DeviceState {
    const awaiting = [...COMMANDS].find(([, c]) => c === this.awaiting)?.[0] ?? null;
    return { version: 1, data: { ...this.state, queue: [...this.queue], awaiting, lastSent: this.lastSent } };
  }

  restoreState(state: DeviceState): void {
    const what = "ps2-keyboard";
    const d = stateData(state, what, 1);
    const set = stateInt(d, "set", what, 1, 3) as ScancodeSet;
    const awaiting = stateOptionalInt(d, "awaiting", what, 0, 255);
    const command = awaiting === undefined ? undefined : COMMANDS.get(awaiting);
    if (awaiting !== undefined && !command?.argument) throw new SnapshotError(`${what}: 0x${awaiting.toString(16)} is not a command that takes an argument`);
    Object.assign(this.state, { set, scanning: stateBool(d, "scanning", what), leds: stateInt(d, "leds", what, 0, 7), typematic: stateInt(d, "typematic", what, 0, 0x7f) });
    this.queue.splice(0, this.queue.length, ...stateIntList(d, "queue", what, 0, 255, KEYBOARD_QUEUE_LIMIT + 4));
    this.awaiting = command;
    this.lastSent = stateInt(d, "lastSent", what, 0, 255);
  }

  /** Power-on defaults (reset, 0xF6) or the same with scanning off (0xF5). */
  defaults(scanning: boolean): void {
    Object.assign(this.state, { set: 2, scanning, leds: 0, typematic: DEFAULT_TYPEMATIC });
  }

  private reply(bytes: readonly number[]): void {
    this.queue.push(...bytes);
    this.onData?.();
  }
}
