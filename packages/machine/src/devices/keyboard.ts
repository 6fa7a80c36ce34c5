import type { Logger } from "@vmm/core";
import { keyForKeysym } from "./keysyms.js";
import type { Ps2Keyboard } from "./ps2-keyboard.js";
import type { KeyName } from "./scancodes.js";

/**
 * The machine's keyboard as displays see it (`MachineTokens.Keyboard`): keys by X11 keysym, as RFB KeyEvent
 * and the web display deliver them, typed on the PS/2 keyboard behind the i8042.
 */
export interface Keyboard {
  /** A key went down or up; false when the keysym has no key on a US keyboard or the key was not sent. */
  press(keysym: number, down: boolean): boolean;
}

export class KeysymKeyboard implements Keyboard {
  /** Keysyms that had no key. */
  unknown = 0;

  constructor(
    private readonly keyboard: Ps2Keyboard,
    private readonly logger?: Logger,
  ) {}

  press(keysym: number, down: boolean): boolean {
    const key = keyForKeysym(keysym);
    if (!key) {
      this.unknown++;
      this.logger?.debug(`keyboard: keysym 0x${keysym.toString(16)} has no key on the US layout; dropped`);
      return false;
    }
    return this.key(key, down);
  }

  /** A key by name (tests, scripted input). */
  key(key: KeyName, down: boolean): boolean {
    const sent = this.keyboard.key(key, down);
    if (!sent) this.logger?.debug(`keyboard: ${key} ${down ? "down" : "up"} dropped (scanning off or queue full)`);
    return sent;
  }
}
