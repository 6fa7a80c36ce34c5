/**
 * The machine's keyboard as display devices see it (`Tokens.Keyboard`): keys by X11 keysym, as RFB KeyEvent and
 * the web display deliver them. A machine that has a keyboard registers one; a display checks
 * `container.isRegistered(Tokens.Keyboard, true)` before it resolves it.
 */
export interface Keyboard {
  /** A key went down or up; false when the keysym has no key on the machine's layout or the key was not sent. */
  press(keysym: number, down: boolean): boolean;
}
