// The ACPI power button, judged by Linux: `vmm stop NAME` presses it, the kernel's button driver reports KEY_POWER
// on an input device, the init (its "poweroff" check, waiting on /dev/input/event*) powers off, and Linux enters S5
// through the DSDT's \_S5: vmm exits 0 with the poweroff line. The control socket lives in a private
// XDG_RUNTIME_DIR, so this test never sees another VM named like its own.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kvmSkipBanner } from "@vmm/test-support";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { bootLinux, vmmBin, type BootResult } from "../src/boot.js";

const guest = inject("linuxGuest");
if (!guest.ok) console.warn(kvmSkipBanner("@vmm/linux-tests", "Linux power button test", guest.reason));

const tmp = mkdtempSync(join(tmpdir(), "vmm-linux-poweroff-"));
// Inherited by the vmm processes this file starts (vmm run and vmm stop find the socket there).
process.env.XDG_RUNTIME_DIR = mkdtempSync(join(tmpdir(), "vmm-linux-xdg-"));
const NAME = "linux-poweroff";

interface Stop {
  status: number | null;
  stdout: string;
  stderr: string;
  /** From `vmm stop` starting to the end of `vmm run`. */
  poweroffMs: number;
}

describe.skipIf(!guest.ok)("Linux powers off when vmm stop presses the ACPI power button", () => {
  let boot: BootResult;
  let stop: Stop | undefined;
  let log = "";

  beforeAll(async () => {
    const g = guest as { ok: true; bzImage: string; initramfs: string };
    let stopping: Promise<Omit<Stop, "poweroffMs"> & { started: number }> | undefined;
    boot = await bootLinux({
      bzImage: g.bzImage,
      initramfs: g.initramfs,
      timeoutMs: 240_000,
      vmmArgs: ["-m", "128M", "--name", NAME],
      checks: ["poweroff"],
      onBoot: () => void (stopping = undefined),
      onLine: (line) => {
        if (stopping || !line.startsWith("@@ poweroff ready")) return;
        const started = Date.now();
        stopping = new Promise((resolve) => {
          const child = spawn(process.execPath, [vmmBin, "stop", NAME, "--timeout", "120"], { stdio: ["ignore", "pipe", "pipe"] });
          let stdout = "";
          let stderr = "";
          child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
          child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
          child.on("close", (status) => resolve({ status, stdout, stderr, started }));
        });
      },
    });
    const ended = Date.now();
    const s = await stopping;
    if (s) stop = { status: s.status, stdout: s.stdout, stderr: s.stderr, poweroffMs: ended - s.started };
    const path = join(tmp, "serial.log");
    writeFileSync(path, boot.serial);
    log = `serial log: ${path}; last lines:\n${boot.serial.slice(-2000)}\nvmm stderr: ${boot.stderr}`;
  }, 420_000);

  it("the kernel finds the fixed-feature power button and S5 in the VMM's ACPI tables, and the init listens", () => {
    expect(boot.timedOut, log).toBe(false);
    expect(boot.serial, log).toMatch(/ACPI: \(supports S0 S5\)|ACPI: PM: \(supports S0 S5\)/);
    expect(boot.serial, log).toMatch(/ACPI: button: Power Button \[PWRF\]/);
    expect(boot.report, log).toContainEqual(expect.stringMatching(/^poweroff ready inputs=\d$/));
  });

  it("vmm stop presses the button; the init sees KEY_POWER, Linux powers off, and vmm exits 0 with the poweroff line", () => {
    expect(stop, log).toBeDefined();
    expect(boot.report, log).toContainEqual(expect.stringMatching(/^poweroff KEY_POWER on event\d$/));
    expect(boot.report.filter((l) => l.startsWith("FAIL")), log).toEqual([]);
    // The kernel's own shutdown path ran: devices shut down, then the power-off message before S5.
    expect(boot.serial, log).toMatch(/reboot: Power down/);
    expect([boot.status, boot.stderr], log).toEqual([0, `vmm: ${NAME}: the guest powered off\n`]);
    expect([stop!.status, stop!.stdout, stop!.stderr]).toEqual([0, `${NAME}: powered off\n`, ""]);
    console.info(`[linux] vmm stop to power off: ${(stop!.poweroffMs / 1000).toFixed(1)} s; userspace ${((boot.userspaceMs ?? 0) / 1000).toFixed(1)} s after vmm started`);
  });
});
