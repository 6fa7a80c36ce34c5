import { describe, expect, it } from "vitest";
import { kvmOk, runGuest } from "./helpers.js";

describe.skipIf(!kvmOk)("guest programs under KVM", () => {
  for (const format of ["raw", "elf"] as const) {
    it(`prints hello world on COM1 via the ${format} entry and exits 0`, async () => {
      const { result, serial } = await runGuest("hello", format);
      expect(serial).toContain(`Hello from guest-kit (${format} entry), apic id 0\n`);
      expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
    });
  }
});
