/**
 * PC keyboard keys and their scan codes. Set 2 is what a PS/2 keyboard sends by default; set 1 is what PC
 * software sees after the i8042 translates (or what the keyboard sends when set 1 is selected). A code above
 * 0xFF is an extended key: 0xE0 followed by its low byte.
 */
export const KEYS = {
  Escape: [0x01, 0x76],
  Digit1: [0x02, 0x16],
  Digit2: [0x03, 0x1e],
  Digit3: [0x04, 0x26],
  Digit4: [0x05, 0x25],
  Digit5: [0x06, 0x2e],
  Digit6: [0x07, 0x36],
  Digit7: [0x08, 0x3d],
  Digit8: [0x09, 0x3e],
  Digit9: [0x0a, 0x46],
  Digit0: [0x0b, 0x45],
  Minus: [0x0c, 0x4e],
  Equal: [0x0d, 0x55],
  Backspace: [0x0e, 0x66],
  Tab: [0x0f, 0x0d],
  KeyQ: [0x10, 0x15],
  KeyW: [0x11, 0x1d],
  KeyE: [0x12, 0x24],
  KeyR: [0x13, 0x2d],
  KeyT: [0x14, 0x2c],
  KeyY: [0x15, 0x35],
  KeyU: [0x16, 0x3c],
  KeyI: [0x17, 0x43],
  KeyO: [0x18, 0x44],
  KeyP: [0x19, 0x4d],
  BracketLeft: [0x1a, 0x54],
  BracketRight: [0x1b, 0x5b],
  Enter: [0x1c, 0x5a],
  ControlLeft: [0x1d, 0x14],
  KeyA: [0x1e, 0x1c],
  KeyS: [0x1f, 0x1b],
  KeyD: [0x20, 0x23],
  KeyF: [0x21, 0x2b],
  KeyG: [0x22, 0x34],
  KeyH: [0x23, 0x33],
  KeyJ: [0x24, 0x3b],
  KeyK: [0x25, 0x42],
  KeyL: [0x26, 0x4b],
  Semicolon: [0x27, 0x4c],
  Quote: [0x28, 0x52],
  Backquote: [0x29, 0x0e],
  ShiftLeft: [0x2a, 0x12],
  Backslash: [0x2b, 0x5d],
  KeyZ: [0x2c, 0x1a],
  KeyX: [0x2d, 0x22],
  KeyC: [0x2e, 0x21],
  KeyV: [0x2f, 0x2a],
  KeyB: [0x30, 0x32],
  KeyN: [0x31, 0x31],
  KeyM: [0x32, 0x3a],
  Comma: [0x33, 0x41],
  Period: [0x34, 0x49],
  Slash: [0x35, 0x4a],
  ShiftRight: [0x36, 0x59],
  NumpadMultiply: [0x37, 0x7c],
  AltLeft: [0x38, 0x11],
  Space: [0x39, 0x29],
  CapsLock: [0x3a, 0x58],
  F1: [0x3b, 0x05],
  F2: [0x3c, 0x06],
  F3: [0x3d, 0x04],
  F4: [0x3e, 0x0c],
  F5: [0x3f, 0x03],
  F6: [0x40, 0x0b],
  F7: [0x41, 0x83],
  F8: [0x42, 0x0a],
  F9: [0x43, 0x01],
  F10: [0x44, 0x09],
  NumLock: [0x45, 0x77],
  ScrollLock: [0x46, 0x7e],
  Numpad7: [0x47, 0x6c],
  Numpad8: [0x48, 0x75],
  Numpad9: [0x49, 0x7d],
  NumpadSubtract: [0x4a, 0x7b],
  Numpad4: [0x4b, 0x6b],
  Numpad5: [0x4c, 0x73],
  Numpad6: [0x4d, 0x74],
  NumpadAdd: [0x4e, 0x79],
  Numpad1: [0x4f, 0x69],
  Numpad2: [0x50, 0x72],
  Numpad3: [0x51, 0x7a],
  Numpad0: [0x52, 0x70],
  NumpadDecimal: [0x53, 0x71],
  IntlBackslash: [0x56, 0x61],
  F11: [0x57, 0x78],
  F12: [0x58, 0x07],
  NumpadEnter: [0xe01c, 0xe05a],
  ControlRight: [0xe01d, 0xe014],
  NumpadDivide: [0xe035, 0xe04a],
  AltRight: [0xe038, 0xe011],
  Home: [0xe047, 0xe06c],
  ArrowUp: [0xe048, 0xe075],
  PageUp: [0xe049, 0xe07d],
  ArrowLeft: [0xe04b, 0xe06b],
  ArrowRight: [0xe04d, 0xe074],
  End: [0xe04f, 0xe069],
  ArrowDown: [0xe050, 0xe072],
  PageDown: [0xe051, 0xe07a],
  Insert: [0xe052, 0xe070],
  Delete: [0xe053, 0xe071],
  MetaLeft: [0xe05b, 0xe01f],
  MetaRight: [0xe05c, 0xe027],
  ContextMenu: [0xe05d, 0xe02f],
} as const satisfies Record<string, readonly [number, number]>;

/** Keys whose sequences are not one (possibly extended) code: explicit make and break bytes per set. */
const SPECIAL = {
  // Sends a fake left shift around its code.
  PrintScreen: { set1: [[0xe0, 0x2a, 0xe0, 0x37], [0xe0, 0xb7, 0xe0, 0xaa]], set2: [[0xe0, 0x12, 0xe0, 0x7c], [0xe0, 0xf0, 0x7c, 0xe0, 0xf0, 0x12]] },
  // Make and break in one burst on press; nothing on release.
  Pause: { set1: [[0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5], []], set2: [[0xe1, 0x14, 0x77, 0xe1, 0xf0, 0x14, 0xf0, 0x77], []] },
} as const satisfies Record<string, Record<"set1" | "set2", readonly [readonly number[], readonly number[]]>>;

export type KeyName = keyof typeof KEYS | keyof typeof SPECIAL;
export type ScancodeSet = 1 | 2;

export const KEY_NAMES: readonly KeyName[] = [...Object.keys(KEYS), ...Object.keys(SPECIAL)] as KeyName[];

const BREAK_PREFIX_SET2 = 0xf0;
const EXTENDED_PREFIX = 0xe0;

/** The bytes a keyboard in scan code set `set` sends when `key` goes down (`down`) or up. */
export function scancodes(key: KeyName, down: boolean, set: ScancodeSet): readonly number[] {
  if (key in SPECIAL) {
    const seqs = SPECIAL[key as keyof typeof SPECIAL][set === 1 ? "set1" : "set2"];
    return down ? seqs[0] : seqs[1];
  }
  const code = KEYS[key as keyof typeof KEYS][set - 1]!;
  const prefix = code > 0xff ? [EXTENDED_PREFIX] : [];
  const low = code & 0xff;
  if (down) return [...prefix, low];
  return set === 1 ? [...prefix, low | 0x80] : [...prefix, BREAK_PREFIX_SET2, low];
}

/**
 * The i8042's set 2 → set 1 translation for one byte (0xF0 break prefixes are handled by the caller): derived
 * from the key table, so translation and direct set 1 always agree. Bytes no key sends (prefixes, command
 * responses such as 0xFA, 0xAA, 0xAB) pass through unchanged.
 */
export const TRANSLATE_SET2_TO_SET1: ReadonlyMap<number, number> = new Map(
  // An extended key's second byte translates like any other (E0 passes through), so its low bytes count too.
  Object.values(KEYS).map(([set1, set2]) => [set2 & 0xff, set1 & 0xff] as const),
);

/** Set 2's break prefix: the translating controller drops it and sets bit 7 of the next byte. */
export const SET2_BREAK_PREFIX = BREAK_PREFIX_SET2;
