// virtio-net judged by two real network stacks: Linux in the guest and the host kernel behind a tap, in a fresh
// network namespace (the test file re-runs itself under `unshare -n`, so it only sees the tap it creates).
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { insideNetns, ip, netnsOk, runInFreshNetns } from "@vmm/test-support/netns";
import { describe, expect, inject, it } from "vitest";
import { bootLinux } from "../src/boot.js";

const guest = inject("linuxGuest");
const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const TAP = "vmmtap0";
const HOST_IP = "10.0.2.2";
const GUEST_IP = "10.0.2.15";

describe.skipIf(!guest.ok || !netnsOk || insideNetns)("Linux's virtio-net and a host tap in a fresh network namespace", () => {
  it("the guest pings the host through virtio-net and the tap (run inside the namespace)", async () => {
    const { status, output } = await runInFreshNetns(packageDir, fileURLToPath(import.meta.url), 230_000);
    // Inside, the launcher skips itself and the guest test runs.
    expect(output).toMatch(/Tests\s+1 passed \| 1 skipped \(2\)/);
    expect(status, output.slice(-4000)).toBe(0);
  }, 240_000);
});

describe.runIf(insideNetns && guest.ok)("inside the namespace", () => {
  it("brings eth0 up with Linux's ioctls and gets ICMP echo replies from the host's stack, virtio-net's queues on their data-plane workers", async () => {
    const g = guest as { ok: true; bzImage: string; initramfs: string };
    let configured = false;
    let hostRx = 0;
    const r = await bootLinux({
      bzImage: g.bzImage,
      initramfs: g.initramfs,
      vmmArgs: ["-m", "256M", "-n", `tap,ifname=${TAP},mac=52:54:00:12:34:56`, "--stats"],
      checks: [`net-up:eth0:${GUEST_IP}/24`, `ping:${HOST_IP}`, "cat:/proc/net/dev"],
      // vmm creates the tap as it starts; the host end is configured while the guest boots.
      // (/sys/class/net shows the namespace that mounted sysfs, not this one: ask ip.)
      // A retried boot is a new vmm with a new tap, configured again.
      onBoot: () => {
        configured = false;
      },
      onLine: (line) => {
        // The tap goes with vmm: read its counters while the guest still runs.
        if (line.startsWith("@@ ping ")) hostRx = Number(/"rx":\{"bytes":\d+,"packets":(\d+)/.exec(ip("-s", "-j", "link", "show", TAP))?.[1] ?? 0);
        if (configured || spawnSync("ip", ["link", "show", TAP], { stdio: "ignore" }).status !== 0) return;
        configured = true;
        ip("addr", "add", `${HOST_IP}/24`, "dev", TAP);
        ip("link", "set", TAP, "up");
      },
      timeoutMs: 200_000,
    });
    expect(configured).toBe(true);
    expect(r.report.at(-1), r.serial.slice(-3000)).toBe("done failures=0");
    expect(r.report).toContain("net-up eth0 mac=525400123456 ok");
    expect(r.report.some((l) => l.startsWith(`ping ${HOST_IP} reply seq=`))).toBe(true);
    // The host saw the guest's frames on the tap too.
    expect(hostRx).toBeGreaterThan(0);
    // Both queues ran on virtio-net's data-plane workers (the tap's default), interrupting Linux through irqfds.
    const stats = /vmm: stats: (\S*net\S*): (.*)/.exec(r.stderr)?.[2] ?? "";
    const counter = (key: string) => Number(new RegExp(`\\b${key}=(\\d+)`).exec(stats)?.[1] ?? -1);
    expect(counter("queue0WorkerRequests"), r.stderr).toBeGreaterThan(0);
    expect(counter("queue1WorkerRequests"), r.stderr).toBeGreaterThan(0);
    expect(counter("queue0IrqfdSignals") + counter("queue1IrqfdSignals"), r.stderr).toBeGreaterThan(0);
    expect(r.status).toBe(0);
  }, 420_000);
});
