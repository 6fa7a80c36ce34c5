// Linux on vCPUs that run on host threads of their own (`vmm run -c 2`: the default for more than one vCPU, which
// --verbose reports). The test kernel is a
// uniprocessor build (NR_CPUS=1, kernel/config.fragment): it runs on the boot CPU's thread and ignores the second
// CPU, whose thread waits in KVM_RUN for a SIPI that never comes until vmm ends it. Its drivers, timers and MSI-X
// interrupts work through the threaded exits (virtio-rng, a virtio-blk write read back after dropping the cache).
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kvmSkipBanner } from "@vmm/test-support";
import { describe, expect, inject, it } from "vitest";
import { bootLinux, sectorPattern } from "../src/boot.js";

const guest = inject("linuxGuest");
if (!guest.ok) console.warn(kvmSkipBanner("@vmm/linux-tests", "Linux on vCPU threads", guest.reason));

describe.skipIf(!guest.ok)("Linux with -c 2 (vCPU threads by default)", () => {
  it("runs on the boot CPU's thread with its virtio drivers (failures=0) and exits 0 with the second vCPU's thread still waiting for a SIPI", async () => {
    const g = guest as { ok: true; bzImage: string; initramfs: string };
    const tmp = mkdtempSync(join(tmpdir(), "vmm-linux-threads-"));
    const disk = join(tmp, "disk.img");
    writeFileSync(disk, new Uint8Array(16 << 20));
    const r = await bootLinux({
      bzImage: g.bzImage,
      initramfs: g.initramfs,
      vmmArgs: ["-m", "256", "-c", "2", "--verbose", "--rng", "-d", disk],
      checks: ["cat:/sys/devices/system/cpu/online", "rng", "blk-write:vda:2048", "interrupts"],
      timeoutMs: 200_000,
    });
    const log = join(tmp, "serial.log");
    writeFileSync(log, r.serial);
    expect(r.timedOut, `serial log: ${log}`).toBe(false);
    expect(r.report.at(-1), `serial log: ${log}`).toBe("done failures=0");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/, 2 vCPUs \(a thread each\), /);
    // The uniprocessor kernel sees the second CPU in the MADT and leaves it alone.
    expect(r.serial).toMatch(/Processor 1\/0x1 ignored/);
    expect(r.report).toContain("/sys/devices/system/cpu/online 0");
    expect(r.report.some((l) => /^interrupts\s+\d+:\s+[1-9]\d*\s+PCI-MSI.*virtio/.test(l))).toBe(true);
    expect(r.serial).not.toMatch(/WARNING|BUG:|Call Trace|Oops|watchdog/);
    const image = new Uint8Array(readFileSync(disk));
    expect(Buffer.compare(image.subarray(2048 * 512, 2048 * 512 + 8192), Buffer.from(sectorPattern(2048, 8192)))).toBe(0);
  }, 300_000);
});
