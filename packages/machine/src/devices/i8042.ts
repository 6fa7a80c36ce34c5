import type { ByteDevice } from "./byte-registers.js";

export const I8042_PORTS = { data: 0x60, command: 0x64 } as const;

const STATUS_OBF = 0x01;
const STATUS_SYS = 0x04;
const STATUS_CMD = 0x08;

/** Controller commands this model answers; everything else is accepted and ignored. */
const Command = {
  readConfig: 0x20,
  writeConfig: 0x60,
  disableAux: 0xa7,
  enableAux: 0xa8,
  testAux: 0xa9,
  selfTest: 0xaa,
  testKeyboard: 0xab,
  disableKeyboard: 0xad,
  enableKeyboard: 0xae,
  pulseReset: 0xfe,
} as const;

/**
 * The part of the i8042 keyboard controller a guest needs to reset the machine: command 0xFE on port 0x64
 * pulses the CPU reset line (the VM stops with reason "reset"). Status reads, the configuration byte and the
 * self tests answer like an idle controller with no keyboard traffic. Offsets: 0 = port 0x60, 4 = port 0x64.
 */
export class I8042 implements ByteDevice {
  private config = 0x45;
  private output: number | undefined;
  private pendingWrite: number | undefined;
  private lastWasCommand = false;

  constructor(private readonly onReset: () => void) {}

  readByte(offset: number): number {
    if (offset === 0) {
      const v = this.output ?? 0;
      this.output = undefined;
      return v;
    }
    if (offset === 4) return STATUS_SYS | (this.lastWasCommand ? STATUS_CMD : 0) | (this.output !== undefined ? STATUS_OBF : 0);
    return 0xff;
  }

  writeByte(offset: number, value: number): void {
    if (offset === 0) {
      this.lastWasCommand = false;
      if (this.pendingWrite === Command.writeConfig) this.config = value;
      this.pendingWrite = undefined;
      return;
    }
    if (offset !== 4) return;
    this.lastWasCommand = true;
    switch (value) {
      case Command.readConfig:
        this.output = this.config;
        break;
      case Command.writeConfig:
        this.pendingWrite = value;
        break;
      case Command.selfTest:
        this.output = 0x55;
        break;
      case Command.testKeyboard:
      case Command.testAux:
        this.output = 0x00;
        break;
      case Command.pulseReset:
        this.onReset();
        break;
      default:
        break; // enable/disable ports and the rest: accepted, no state a guest can observe
    }
  }
}
