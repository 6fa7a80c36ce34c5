import { guestSourceDir } from "@vmm/guest-kit";
import { kvmTestGate } from "@vmm/test-support";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { kvmAvailable, runGuestProgram } from "../src/index.js";
import { goodRawDevice } from "./raw-device.js";

const forever = join(dirname(fileURLToPath(import.meta.url)), "guests", "forever.c");
const gate = kvmTestGate("@vmm/plugin-testkit", { what: "runGuestProgram under /dev/kvm", check: kvmAvailable });

describe("runGuestProgram", () => {
  it("wants exactly one of source and elf", async () => {
    await expect(runGuestProgram({})).rejects.toThrow("runGuestProgram: give exactly one of source (a .c file) and elf (a built image)");
  });

  it.skipIf(!gate.ok)("builds a guest-kit program, runs it with devices on the bus and collects COM1 and the exit status", async () => {
    const run = await runGuestProgram({ source: join(guestSourceDir, "programs", "exit-status.c"), devices: () => [goodRawDevice()] });
    expect(run.serial).toContain("exiting with 42");
    expect(run).toMatchObject({ status: 42, reason: "debug-exit", timedOut: false });
  });

  it.skipIf(!gate.ok)("stops a program that runs past timeoutMs", async () => {
    const run = await runGuestProgram({ source: forever, timeoutMs: 500 });
    expect(run).toMatchObject({ status: 1, reason: "stopped", timedOut: true });
    expect(run.serial).toContain("looping forever");
    expect(run.message).toContain("ran longer than 500 ms");
  });
});
