import { MemoryLogger, Tokens } from "@vmm/core";
import { buildGuest } from "@vmm/guest-kit";
import { describe, expect, it } from "vitest";
import { Machine } from "./internals.js";
import { kvmOk } from "./helpers.js";

/** Shift down, 'H', Shift up, 'i', Return: what a VNC client sends for typing "Hi" and Enter. */
const TYPED: readonly [number, boolean][] = [
  [0xffe1, true],
  [0x48, true],
  [0x48, false],
  [0xffe1, false],
  [0x69, true],
  [0x69, false],
  [0xff0d, true],
  [0xff0d, false],
];
/** The same in set 1, as the guest reads it after the i8042's translation. */
const SET1 = ["2a", "23", "a3", "aa", "17", "97", "1c", "9c"];

describe.skipIf(!kvmOk)("PS/2 keyboard under KVM", () => {
  it("delivers typed keys as set 1 scancodes through IRQ 1 and the IOAPIC", async () => {
    const path = await buildGuest("keyboard", { format: "elf" });
    let serial = "";
    let typed = false;
    const machine: Machine = new Machine({
      memoryMiB: 64,
      logger: new MemoryLogger(),
      kernel: { kind: "elf", path },
      serial: {
        output: (bytes) => {
          serial += Buffer.from(bytes).toString("latin1");
          if (typed || !serial.includes("keyboard ready\n")) return;
          typed = true;
          // The keyboard as devices find it: in the VM's container.
          const keyboard = machine.container.resolve(Tokens.Keyboard);
          setTimeout(() => TYPED.forEach(([keysym, down]) => keyboard.press(keysym, down)), 5);
        },
      },
    });
    try {
      const result = await machine.run();
      expect(serial).toContain("keyboard: self test 55, command byte 75\n");
      expect(serial).toContain("keyboard: reset fa aa, identify fa ab 41\n");
      const codes = [...serial.matchAll(/^scancode ([0-9a-f]{2})$/gm)].map((m) => m[1]);
      expect(codes).toEqual(SET1);
      expect(serial).toMatch(/keyboard: 8 codes in [1-8] interrupts\n/);
      expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
      expect(machine.keyboard).toBe(machine.container.resolve(Tokens.Keyboard));
    } finally {
      machine.close();
    }
  });
});
