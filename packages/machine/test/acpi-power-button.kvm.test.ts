import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MemoryLogger } from "@vmm/core";
import { buildGuest } from "@vmm/guest-kit";
import { describe, expect, it } from "vitest";
import { kvmOk } from "./helpers.js";
import { Machine } from "./internals.js";

const here = dirname(fileURLToPath(import.meta.url));

describe.skipIf(!kvmOk)("the ACPI power button under /dev/kvm", () => {
  it("a guest that listens gets the SCI on IRQ 9 (level, active high), clears PWRBTN_STS and powers off through \\_S5", async () => {
    const path = await buildGuest("acpi-power-button", { format: "elf", source: join(here, "guests", "acpi-power-button.c") });
    const logger = new MemoryLogger();
    let serial = "";
    let pressed: boolean | undefined;
    const machine = new Machine({
      memoryMiB: 64,
      logger,
      kernel: { kind: "elf", path },
      serial: {
        output: (b) => {
          serial += Buffer.from(b).toString("latin1");
          if (pressed === undefined && serial.includes("ready")) {
            pressed = false;
            setTimeout(() => (pressed = machine.powerButton()), 10);
          }
        },
      },
    });
    try {
      expect(machine.powerButton()).toBe(false); // not running yet
      const timer = setTimeout(() => machine.stop("test timeout"), 60_000);
      const result = await machine.run().finally(() => clearTimeout(timer));
      expect(serial).not.toContain("FAIL");
      expect(serial).toContain("acpi-power-button: ready sci=9 gsi=9 flags=d evt=600 cnt=604 s5=7\n");
      expect(serial).toContain("acpi-power-button: pressed, PM1_STS was 100, now 0\n");
      expect(pressed).toBe(true);
      expect(result).toEqual({ status: 0, reason: "poweroff", message: "the guest powered off (ACPI S5)" });
      expect(machine.powerButton()).toBe(false); // it has stopped
    } finally {
      machine.close();
    }
  });
});
