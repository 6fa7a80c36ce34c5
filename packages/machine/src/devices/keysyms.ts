import type { KeyName } from "./scancodes.js";

/**
 * X11 keysyms (what RFB KeyEvent and the web display carry) to the key of a US-layout PC keyboard. A shifted
 * character (`!`, `A`, `{`) maps to the key that types it: the sender reports Shift itself with its own
 * keysym events, so the guest sees Shift down, the key, Shift up, exactly as typed.
 */
const CHARACTER_KEYS: ReadonlyArray<readonly [string, KeyName]> = [
  ["`~", "Backquote"],
  ["1!", "Digit1"],
  ["2@", "Digit2"],
  ["3#", "Digit3"],
  ["4$", "Digit4"],
  ["5%", "Digit5"],
  ["6^", "Digit6"],
  ["7&", "Digit7"],
  ["8*", "Digit8"],
  ["9(", "Digit9"],
  ["0)", "Digit0"],
  ["-_", "Minus"],
  ["=+", "Equal"],
  ["[{", "BracketLeft"],
  ["]}", "BracketRight"],
  ["\\|", "Backslash"],
  [";:", "Semicolon"],
  ["'\"", "Quote"],
  [",<", "Comma"],
  [".>", "Period"],
  ["/?", "Slash"],
  [" ", "Space"],
];

/** Function and modifier keysyms (0xFFxx, 0xFE03), by value. */
const SPECIAL_KEYSYMS: ReadonlyArray<readonly [number, KeyName]> = [
  [0xff08, "Backspace"],
  [0xff09, "Tab"],
  [0xff0d, "Enter"],
  [0xff13, "Pause"],
  [0xff14, "ScrollLock"],
  [0xff15, "PrintScreen"], // Sys_Req
  [0xff1b, "Escape"],
  [0xff50, "Home"],
  [0xff51, "ArrowLeft"],
  [0xff52, "ArrowUp"],
  [0xff53, "ArrowRight"],
  [0xff54, "ArrowDown"],
  [0xff55, "PageUp"], // Prior
  [0xff56, "PageDown"], // Next
  [0xff57, "End"],
  [0xff61, "PrintScreen"],
  [0xff63, "Insert"],
  [0xff67, "ContextMenu"],
  [0xff7f, "NumLock"],
  [0xff8d, "NumpadEnter"],
  [0xff95, "Numpad7"], // KP_Home
  [0xff96, "Numpad4"], // KP_Left
  [0xff97, "Numpad8"], // KP_Up
  [0xff98, "Numpad6"], // KP_Right
  [0xff99, "Numpad2"], // KP_Down
  [0xff9a, "Numpad9"], // KP_Prior
  [0xff9b, "Numpad3"], // KP_Next
  [0xff9c, "Numpad1"], // KP_End
  [0xff9d, "Numpad5"], // KP_Begin
  [0xff9e, "Numpad0"], // KP_Insert
  [0xff9f, "NumpadDecimal"], // KP_Delete
  [0xffaa, "NumpadMultiply"],
  [0xffab, "NumpadAdd"],
  [0xffad, "NumpadSubtract"],
  [0xffae, "NumpadDecimal"],
  [0xffaf, "NumpadDivide"],
  ...Array.from({ length: 10 }, (_, i) => [0xffb0 + i, `Numpad${i}` as KeyName] as const),
  ...Array.from({ length: 12 }, (_, i) => [0xffbe + i, `F${i + 1}` as KeyName] as const),
  [0xffe1, "ShiftLeft"],
  [0xffe2, "ShiftRight"],
  [0xffe3, "ControlLeft"],
  [0xffe4, "ControlRight"],
  [0xffe5, "CapsLock"],
  [0xffe7, "MetaLeft"], // Meta_L
  [0xffe8, "MetaRight"],
  [0xffe9, "AltLeft"],
  [0xffea, "AltRight"],
  [0xffeb, "MetaLeft"], // Super_L
  [0xffec, "MetaRight"],
  [0xfe03, "AltRight"], // ISO_Level3_Shift (AltGr)
  [0xffff, "Delete"],
];

function buildTable(): ReadonlyMap<number, KeyName> {
  const table = new Map<number, KeyName>();
  for (let c = 0; c < 26; c++) {
    const key = `Key${String.fromCharCode(0x41 + c)}` as KeyName;
    table.set(0x41 + c, key); // 'A'..'Z'
    table.set(0x61 + c, key); // 'a'..'z'
  }
  for (const [chars, key] of CHARACTER_KEYS) for (const ch of chars) table.set(ch.charCodeAt(0), key);
  for (const [keysym, key] of SPECIAL_KEYSYMS) table.set(keysym, key);
  return table;
}

export const KEYSYM_TO_KEY: ReadonlyMap<number, KeyName> = buildTable();

/** The key a keysym is typed with, or undefined when the US layout has none. */
export function keyForKeysym(keysym: number): KeyName | undefined {
  return KEYSYM_TO_KEY.get(keysym);
}
