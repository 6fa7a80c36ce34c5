// Linux through the control plane: the guest is paused and resumed while its init sleeps, then snapshotted and its
// VMM killed; `vmm run --restore` (eager, then lazy memory, both from the one snapshot) continues the same init,
// whose remaining checks use virtio-rng and virtio-blk with Linux's own drivers, interrupts and timers, and end
// with failures=0. Sectors written before the snapshot and after the restore are both on the disk.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kvmSkipBanner } from "@vmm/test-support";
import { describe, expect, inject, it } from "vitest";
import { bootLinux, sectorPattern, vmmBin } from "../src/boot.js";

const guest = inject("linuxGuest");
if (!guest.ok) console.warn(kvmSkipBanner("@vmm/linux-tests", "Linux snapshot tests", guest.reason));

const tmp = mkdtempSync(join(tmpdir(), "vmm-linux-snapshot-"));
// The control sockets of this file's VMs live here (vmm reads XDG_RUNTIME_DIR; bootLinux's vmm inherits it).
process.env.XDG_RUNTIME_DIR = tmp;
const env = { ...process.env };
const NAME = "linux-snap";

function vmm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [vmmBin, ...args], { env, cwd: tmp, encoding: "utf8", timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** `vmm run --restore` to its end: status, serial output, the init's report lines. */
function restore(memory: "eager" | "lazy"): Promise<{ status: number | null; serial: string; stderr: string; report: string[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [vmmBin, "run", "--restore", "snap", "--restore-memory", memory], { env, cwd: tmp, stdio: ["ignore", "pipe", "pipe"] });
    let serial = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.stdout.on("data", (b: Buffer) => (serial += b.toString("latin1")));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("error", reject);
    child.on("close", (status) => {
      clearTimeout(timer);
      const report = serial.split("\n").filter((l) => l.startsWith("@@ ")).map((l) => l.slice(3).replace(/\r$/, ""));
      resolve({ status, serial, stderr, report });
    });
  });
}

const written = (image: Uint8Array, lba: number) => Buffer.compare(image.subarray(lba * 512, lba * 512 + 8192), Buffer.from(sectorPattern(lba, 8192)));

describe.skipIf(!guest.ok)("Linux paused, resumed, snapshotted and restored", () => {
  it("pause and resume a sleeping Linux; a snapshot of it, its VMM killed, restores (eager and lazy) to a clean finish", async () => {
    const g = guest as { ok: true; bzImage: string; initramfs: string };
    const disk = join(tmp, "disk.img");
    writeFileSync(disk, new Uint8Array(16 << 20));
    const steps: string[] = [];
    let sleeps = 0;
    let snapshotted: Promise<void> | undefined;
    const r = await bootLinux({
      bzImage: g.bzImage,
      initramfs: g.initramfs,
      vmmArgs: ["-m", "256", "--rng", "-d", disk, "--name", NAME],
      checks: ["rng", "blk-write:vda:2048", "sleep:4000", "sleep:4000", "rng", "blk-write:vda:4096", "interrupts"],
      timeoutMs: 200_000,
      onBoot: () => {
        sleeps = 0;
      },
      onLine: (line) => {
        if (line !== "@@ check sleep:4000") return;
        sleeps++;
        if (sleeps === 1) {
          // Paused while its init sleeps: the VM says so; resumed, the init reaches its next check.
          const paused = vmm(["pause", NAME]);
          steps.push(`pause: ${paused.status} ${paused.stdout.trim()} ${paused.stderr.trim()}`);
          const listed = vmm(["list", "--json"]);
          steps.push(`list: ${(JSON.parse(listed.stdout || "[]") as Array<{ name: string; state: string }>).map((v) => `${v.name}=${v.state}`).join(",")}`);
          const resumed = vmm(["resume", NAME]);
          steps.push(`resume: ${resumed.status} ${resumed.stdout.trim()} ${resumed.stderr.trim()}`);
          return;
        }
        // In the second sleep: snapshot it (it runs on), then kill its VMM without a clean shutdown.
        snapshotted = (async () => {
          const s = vmm(["snapshot", NAME, "snap"]);
          steps.push(`snapshot: ${s.status} ${s.stderr.trim()}`);
          const listed = JSON.parse(vmm(["list", "--json"]).stdout || "[]") as Array<{ name: string; pid: number }>;
          const pid = listed.find((v) => v.name === NAME)?.pid;
          steps.push(`kill: ${pid ? "found" : "no pid"}`);
          if (pid) process.kill(pid, "SIGKILL");
        })();
      },
    });
    await snapshotted;
    expect(steps).toEqual([`pause: 0 ${NAME}: paused `, `list: ${NAME}=paused`, `resume: 0 ${NAME}: running `, "snapshot: 0 ", "kill: found"]);
    expect(r.signal, r.stderr).toBe("SIGKILL");
    expect(r.report).toContain("check sleep:4000");
    expect(r.report).not.toContain("check blk-write:vda:4096");

    for (const memory of ["eager", "lazy"] as const) {
      const restored = await restore(memory);
      const log = join(tmp, `restore-${memory}.log`);
      writeFileSync(log, restored.serial);
      expect(restored.stderr, `serial log: ${log}`).toBe("");
      expect(restored.status, `serial log: ${log}`).toBe(0);
      // The init picks up after its second sleep: the rest of its checks, nothing from before.
      expect(restored.report.filter((l) => l.startsWith("check ")), log).toEqual(["check rng", "check blk-write:vda:4096", "check interrupts"]);
      expect(restored.report.filter((l) => l.startsWith("FAIL")), log).toEqual([]);
      expect(restored.report.at(-1), log).toBe("done failures=0");
      expect(restored.serial).not.toMatch(/WARNING|BUG:|Call Trace|Oops|watchdog/);
      const image = new Uint8Array(readFileSync(disk));
      expect(written(image, 2048), "LBA 2048 (written before the snapshot)").toBe(0);
      expect(written(image, 4096), "LBA 4096 (written after the restore)").toBe(0);
      // virtio interrupts kept arriving after the restore (MSI-X routes rebuilt).
      expect(restored.report.some((l) => /^interrupts\s+\d+:\s+[1-9]\d*\s.*virtio/.test(l)), log).toBe(true);
    }
  }, 600_000);
});
