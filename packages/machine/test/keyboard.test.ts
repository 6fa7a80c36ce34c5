import { describe, expect, it } from "vitest";
import {
  I8042,
  I8042Config,
  I8042Status,
  KEYBOARD_QUEUE_LIMIT,
  KEYS,
  KEY_NAMES,
  KEYSYM_TO_KEY,
  KeysymKeyboard,
  TRANSLATE_SET2_TO_SET1,
  scancodes,
  type KeyName,
} from "./internals.js";
import { Line } from "./irq-line.js";


const DATA = 0, CMD = 4;

function controller() {
  let resets = 0;
  const irq = new Line();
  const c = new I8042(() => resets++, { irq });
  const keys = new KeysymKeyboard(c.keyboard);
  /** Reads every byte waiting in the output buffer. */
  const drain = () => {
    const out: number[] = [];
    while (c.read(CMD, 1) & I8042Status.OBF) out.push(c.read(DATA, 1));
    return out;
  };
  const command = (cmd: number, data?: number) => {
    c.write(CMD, 1, cmd);
    if (data !== undefined) c.write(DATA, 1, data);
  };
  return { c, irq, keys, drain, command, resets: () => resets };
}

/** Applies the i8042's translation to a set 2 byte stream, the way the controller does. */
function translate(bytes: readonly number[]): number[] {
  const out: number[] = [];
  let brk = false;
  for (const b of bytes) {
    if (b === 0xf0) {
      brk = true;
      continue;
    }
    const t = TRANSLATE_SET2_TO_SET1.get(b) ?? b;
    out.push(brk ? t | 0x80 : t);
    brk = false;
  }
  return out;
}

describe("scan code tables", () => {
  it("gives every key distinct codes in both sets", () => {
    const set1 = Object.values(KEYS).map(([s1]) => s1);
    const set2 = Object.values(KEYS).map(([, s2]) => s2);
    expect(new Set(set1).size).toBe(set1.length);
    expect(new Set(set2).size).toBe(set2.length);
  });

  it("translating a key's set 2 make and break yields its set 1 codes, for every key", () => {
    for (const key of KEY_NAMES) {
      for (const down of [true, false]) expect(translate(scancodes(key, down, 2)), `${key} ${down}`).toEqual(scancodes(key, down, 1));
    }
  });

  it("encodes plain and extended keys in both sets", () => {
    expect(scancodes("KeyH", true, 2)).toEqual([0x33]);
    expect(scancodes("KeyH", false, 2)).toEqual([0xf0, 0x33]);
    expect(scancodes("KeyH", false, 1)).toEqual([0xa3]);
    expect(scancodes("ArrowUp", true, 2)).toEqual([0xe0, 0x75]);
    expect(scancodes("ArrowUp", false, 2)).toEqual([0xe0, 0xf0, 0x75]);
    expect(scancodes("ArrowUp", false, 1)).toEqual([0xe0, 0xc8]);
    expect(scancodes("F7", true, 2)).toEqual([0x83]);
    expect(scancodes("Pause", false, 1)).toEqual([]);
  });

  it("maps US-layout keysyms, shifted characters to the key that types them", () => {
    const k = (sym: number | string) => KEYSYM_TO_KEY.get(typeof sym === "string" ? sym.charCodeAt(0) : sym);
    expect([k("h"), k("H"), k("!"), k("1"), k("{"), k("~"), k(" "), k('"')]).toEqual(["KeyH", "KeyH", "Digit1", "Digit1", "BracketLeft", "Backquote", "Space", "Quote"]);
    expect([k(0xff0d), k(0xff08), k(0xff09), k(0xff1b), k(0xffe1), k(0xffe3), k(0xffe9), k(0xffea)]).toEqual([
      "Enter", "Backspace", "Tab", "Escape", "ShiftLeft", "ControlLeft", "AltLeft", "AltRight",
    ]);
    expect([k(0xff50), k(0xff57), k(0xff55), k(0xff56), k(0xff63), k(0xffff), k(0xff51), k(0xff54)]).toEqual([
      "Home", "End", "PageUp", "PageDown", "Insert", "Delete", "ArrowLeft", "ArrowDown",
    ]);
    expect(Array.from({ length: 12 }, (_, i) => k(0xffbe + i))).toEqual(Array.from({ length: 12 }, (_, i) => `F${i + 1}`));
    for (const key of KEYSYM_TO_KEY.values()) expect(KEY_NAMES).toContain(key);
    expect(k(0x20ac)).toBeUndefined(); // EuroSign: no key on a US keyboard
  });
});

describe("i8042 controller", () => {
  it("starts with translation and the keyboard interrupt on, no aux port, SYS after the self test", () => {
    const { c, command, drain } = controller();
    expect(c.read(CMD, 1)).toBe(I8042Status.SYS | I8042Status.UNLOCKED);
    command(0x20);
    expect(c.read(CMD, 1) & (I8042Status.OBF | I8042Status.A2)).toBe(I8042Status.OBF | I8042Status.A2);
    expect(drain()).toEqual([I8042Config.KBD_INT | I8042Config.SYS | I8042Config.AUX_DISABLED | I8042Config.TRANSLATE]);
    command(0x60, 0x00);
    expect(c.read(CMD, 1) & (I8042Status.SYS | I8042Status.A2)).toBe(0); // SYS mirrors the command byte; last write was data
    command(0xaa);
    expect(drain()).toEqual([0x55]);
    expect(c.read(CMD, 1) & I8042Status.SYS).toBe(I8042Status.SYS);
    command(0xab);
    expect(drain()).toEqual([0x00]);
    // Controller RAM beyond the command byte.
    command(0x65, 0x99);
    command(0x25);
    expect(drain()).toEqual([0x99]);
  });

  it("reports the aux port absent: enabling it leaves AUX_DISABLED set and its test fails", () => {
    const { command, drain } = controller();
    command(0x60, 0x45); // aux enabled in the command byte by the guest
    command(0xa7);
    command(0x20);
    expect(drain()[0]! & I8042Config.AUX_DISABLED).toBe(I8042Config.AUX_DISABLED);
    command(0xa8);
    command(0x20);
    expect(drain()[0]! & I8042Config.AUX_DISABLED).toBe(I8042Config.AUX_DISABLED);
    command(0xa9);
    expect(drain()).toEqual([0x01]);
    command(0xd4, 0xff); // a byte for the absent mouse goes nowhere (not to the keyboard)
    command(0xd3, 0x5a);
    expect(drain()).toEqual([]);
  });

  it("answers keyboard commands: reset, identify (translated 0x83 -> 0x41), set get/set, echo, LEDs, typematic, enable/disable", () => {
    const { c, command, drain } = controller();
    c.write(DATA, 1, 0xff);
    expect(drain()).toEqual([0xfa, 0xaa]);
    c.write(DATA, 1, 0xf2);
    expect(drain()).toEqual([0xfa, 0xab, 0x41]);
    command(0x60, 0x05); // translation off
    c.write(DATA, 1, 0xf2);
    expect(drain()).toEqual([0xfa, 0xab, 0x83]);
    c.write(DATA, 1, 0xf0);
    c.write(DATA, 1, 0x00);
    expect(drain()).toEqual([0xfa, 0xfa, 0x02]);
    c.write(DATA, 1, 0xf0);
    c.write(DATA, 1, 0x01);
    expect(drain()).toEqual([0xfa, 0xfa]);
    expect(c.keyboard.state.set).toBe(1);
    c.write(DATA, 1, 0xf0);
    c.write(DATA, 1, 0x03);
    expect(drain()).toEqual([0xfa, 0xfe]); // set 3 not offered
    c.write(DATA, 1, 0xee);
    expect(drain()).toEqual([0xee]);
    c.write(DATA, 1, 0xed);
    c.write(DATA, 1, 0x07);
    expect(drain()).toEqual([0xfa, 0xfa]);
    expect(c.keyboard.state.leds).toBe(7);
    c.write(DATA, 1, 0xf3);
    c.write(DATA, 1, 0x20);
    expect(drain()).toEqual([0xfa, 0xfa]);
    expect(c.keyboard.state.typematic).toBe(0x20);
    c.write(DATA, 1, 0xf5);
    expect(drain()).toEqual([0xfa]);
    expect(c.keyboard.key("KeyA", true)).toBe(false); // scanning off
    expect(drain()).toEqual([]);
    c.write(DATA, 1, 0xf4);
    expect(drain()).toEqual([0xfa]);
    c.write(DATA, 1, 0x12); // not a command
    expect(drain()).toEqual([0xfe]);
    c.write(DATA, 1, 0xfe); // resend the last byte
    expect(drain()).toEqual([0xfe]);
    c.write(DATA, 1, 0xff); // reset restores set 2
    expect(drain()).toEqual([0xfa, 0xaa]);
    expect(c.keyboard.state).toMatchObject({ set: 2, scanning: true, leds: 0 });
  });

  it("translates typed keys to set 1 by default and passes set 2 through without translation", () => {
    const { command, keys, drain } = controller();
    const type = () => {
      for (const [sym, down] of [[0xffe1, true], [0x48, true], [0x48, false], [0xffe1, false], [0x69, true], [0x69, false], [0xff0d, true], [0xff0d, false], [0xff52, true], [0xff52, false]] as const) {
        expect(keys.press(sym, down)).toBe(true);
      }
      return drain();
    };
    expect(type()).toEqual([0x2a, 0x23, 0xa3, 0xaa, 0x17, 0x97, 0x1c, 0x9c, 0xe0, 0x48, 0xe0, 0xc8]);
    command(0x60, 0x01);
    expect(type()).toEqual([0x12, 0x33, 0xf0, 0x33, 0xf0, 0x12, 0x43, 0xf0, 0x43, 0x5a, 0xf0, 0x5a, 0xe0, 0x75, 0xe0, 0xf0, 0x75]);
    expect(keys.press(0x20ac, true)).toBe(false);
    expect(keys.unknown).toBe(1);
  });

  it("holds keyboard bytes while the keyboard interface is disabled and queues a bounded number", () => {
    const { c, command, keys, drain } = controller();
    command(0xad);
    keys.press(0x61, true);
    expect(c.read(CMD, 1) & I8042Status.OBF).toBe(0);
    command(0x20); // controller answers still come through
    expect(drain()[0]! & I8042Config.KBD_DISABLED).toBe(I8042Config.KBD_DISABLED);
    command(0xae);
    expect(drain()).toEqual([0x1e]);
    // The keyboard buffers at most KEYBOARD_QUEUE_LIMIT bytes; whole key events that do not fit are dropped.
    command(0xad);
    let sent = 0;
    for (let i = 0; i < KEYBOARD_QUEUE_LIMIT; i++) if (keys.key("ArrowUp", i % 2 === 0)) sent++;
    expect(c.keyboard.dropped).toBeGreaterThan(0);
    command(0xae);
    const out = drain();
    expect(out.length).toBeLessThanOrEqual(KEYBOARD_QUEUE_LIMIT);
    expect(out).toEqual(Array.from({ length: sent }, (_, i) => (i % 2 === 0 ? [0xe0, 0x48] : [0xe0, 0xc8])).flat());
  });

  it("raises IRQ 1 once per byte while the keyboard interrupt is enabled", () => {
    const { c, irq, command, keys } = controller();
    keys.key("KeyQ" as KeyName, true);
    keys.key("KeyQ", false);
    expect(irq.level).toBe(true);
    expect(irq.edges).toBe(1);
    expect(c.read(DATA, 1)).toBe(0x10);
    expect(irq.edges).toBe(2); // the next byte landed: a new edge
    expect(c.read(DATA, 1)).toBe(0x90);
    expect(irq.level).toBe(false);
    expect(c.read(DATA, 1)).toBe(0x90); // empty buffer: the last byte again, no interrupt
    expect(irq.edges).toBe(2);
    command(0x60, 0x64); // interrupt off
    keys.key("KeyQ", true);
    expect(irq.level).toBe(false);
    expect(c.read(CMD, 1) & I8042Status.OBF).toBe(I8042Status.OBF);
    command(0x60, 0x65); // on again with a byte waiting: the line rises
    expect(irq.edges).toBe(3);
  });

  it("resets the machine through the output port's reset line and the pulse commands", () => {
    const { command, drain, resets } = controller();
    command(0xd0);
    expect(drain()[0]! & 0x03).toBe(0x03);
    command(0xd1, 0xdf); // A20 on, reset line high: nothing happens
    expect(resets()).toBe(0);
    command(0xd0);
    expect(drain()).toEqual([0xcf]); // bit 4 reads the keyboard OBF, clear when the command ran
    command(0xff); // pulse nothing
    command(0xfd); // pulse line 1 (A20), not reset
    expect(resets()).toBe(0);
    command(0xd1, 0xde);
    expect(resets()).toBe(1);
    command(0xfe);
    expect(resets()).toBe(2);
    command(0xf0);
    expect(resets()).toBe(3);
  });

  it("works as an IoHandler and counts unsupported commands", () => {
    const { c } = controller();
    const h = c;
    h.write(CMD, 1, 0xaa);
    expect(h.read(DATA, 1)).toBe(0x55);
    h.write(CMD, 1, 0x01);
    expect(c.ignoredCommands).toBe(1);
  });
});
