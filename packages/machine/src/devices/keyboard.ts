import type { Keyboard, Logger } from "@vmm/core";
import { keyForKeysym } from "./keysyms.js";
import type { Ps2Keyboard } from "./ps2-keyboard.js";
import type { KeyName } from "./scancodes.js";

/**
 * The machine's keyboard as displays see it (core's `Keyboard`, registered under `Tokens.Keyboard`): keys by X11
 * keysym, typed on the PS/2 keyboard behind the i8042 with a US layout.
 */
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
