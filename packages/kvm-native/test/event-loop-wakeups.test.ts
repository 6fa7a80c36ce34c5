// What ends a run slice: new event-loop work ends it at once, the re-entry setImmediate does not.
// Liveness thresholds only (the host is shared and noisy); performance is measured by benchmarks.
import { EventFd } from "@vmm/host-io";
import { afterEach, describe, expect, it } from "vitest";
import type { RunOptions, VcpuRunResult, Vcpu } from "../src/index.js";
import { Recorder, realModeVm, type TestVm } from "./support/guest.js";
import { kvmOk } from "./support/kvm.js";

// Long slices: only new work (or a bug) can end a run early.
const LONG: RunOptions = { maxSliceMs: 5000, immediateSliceMs: 5000 };

// Spins ~20,000 loop iterations (a few ms of emulated code), writes the ioeventfd port (no exit), spins forever.
const DOORBELL_THEN_SPIN = `
  mov $20000, %cx
1: loop 1b
  mov $1, %ax
  out %ax, $0x60
2: inc %eax
  jmp 2b`;
const SPIN = `1: inc %eax; jmp 1b`;

/**
 * Calls run() from inside a setImmediate callback, as a machine re-enters (Node's idle handle is active then),
 * unless `done()` already holds there (the work awaited was served earlier in this loop turn).
 */
function runFromImmediate(
  vcpu: Vcpu,
  opts: RunOptions,
  done: () => boolean = () => false,
): Promise<{ result: VcpuRunResult; ms: number }> {
  return new Promise((resolve, reject) =>
    setImmediate(() => {
      try {
        if (done()) return resolve({ result: { reason: "yield" }, ms: 0 });
        const start = performance.now();
        const result = vcpu.run(new Recorder(vcpu), opts);
        resolve({ result, ms: performance.now() - start });
      } catch (e) {
        reject(e);
      }
    }),
  );
}

describe.skipIf(!kvmOk)("a run slice ends on new event-loop work, not on the re-entry immediate (real /dev/kvm)", () => {
  let t: TestVm | undefined;
  const fds: EventFd[] = [];
  afterEach(() => {
    for (const f of fds.splice(0)) f.close();
    t?.close();
    t = undefined;
  });

  it("an ioeventfd the guest signals ends run() long before a 5 s slice, then its onSignal runs", async () => {
    t = realModeVm(DOORBELL_THEN_SPIN);
    const efd = new EventFd();
    fds.push(efd);
    const reg = t.vm.ioeventfd(efd, { space: "pio", address: 0x60, size: 2 });
    let count = 0n;
    efd.onSignal((n) => { count += n; });
    // A slice may also end early for other work (the worker's IPC): run until the doorbell was served.
    const start = performance.now();
    const slices: number[] = [];
    while (count === 0n && performance.now() - start < 4000) {
      const { result, ms } = await runFromImmediate(t.vcpu, LONG, () => count > 0n);
      expect(result.reason).toBe("yield");
      slices.push(ms);
    }
    expect(count).toBe(1n);
    expect(performance.now() - start).toBeLessThan(2500); // liveness: the readable eventfd kicked, not the 5 s slice end
    reg.remove();
  });

  it("a setTimeout falls due and fires on time while the guest spins without exits under 5 s slices", async () => {
    t = realModeVm(SPIN);
    const start = performance.now();
    let firedAt: number | undefined;
    setTimeout(() => { firedAt = performance.now(); }, 50);
    let runs = 0;
    while (firedAt === undefined && performance.now() - start < 4000) {
      const { result } = await runFromImmediate(t.vcpu, LONG, () => firedAt !== undefined);
      expect(result.reason).toBe("yield");
      runs++;
    }
    expect(firedAt).toBeDefined();
    const lateness = firedAt! - start - 50;
    // libuv schedules timers in whole milliseconds of its cached loop time, so a timer may fire up to 1 ms before
    // performance.now() says 50 ms have passed; it must never be earlier than that.
    expect(lateness).toBeGreaterThan(-1);
    expect(lateness).toBeLessThan(1000); // liveness: the timer's due time ended the slice, not the 5 s cap
    expect(runs).toBeGreaterThanOrEqual(1);
  });

  it("a threadpool completion (fs read) ends a 5 s slice", async () => {
    t = realModeVm(SPIN);
    const { readFile } = await import("node:fs/promises");
    let done = false;
    const p = readFile(new URL(import.meta.url)).then(() => { done = true; });
    const start = performance.now();
    while (!done && performance.now() - start < 4000) await runFromImmediate(t.vcpu, LONG, () => done);
    await p;
    expect(done).toBe(true);
    expect(performance.now() - start).toBeLessThan(4000);
  });

  it("the setImmediate that re-entered run() does not end the slice (no spurious zero timeout)", async () => {
    t = realModeVm(SPIN);
    // The worker's own IPC can end a slice early now and then, so one slice of several must run its course.
    const slices: number[] = [];
    for (let i = 0; i < 5 && !slices.some((ms) => ms >= 100); i++) {
      const { result, ms } = await runFromImmediate(t.vcpu, { maxSliceMs: 300, immediateSliceMs: 300 });
      expect(result.reason).toBe("yield");
      slices.push(ms);
    }
    expect(Math.max(...slices)).toBeGreaterThanOrEqual(100); // the old behaviour ended every one at ~4 ms
  });

  it("a synchronous caller that never lets the loop turn still gets whole slices while an fd stays readable", () => {
    // ~50,000 loop iterations (some 15-25 ms of emulated code), then hlt.
    t = realModeVm(`mov $50000, %cx; 1: loop 1b; hlt`);
    const efd = new EventFd();
    fds.push(efd);
    efd.onSignal(() => {});
    efd.write(1); // readable until the loop turns, which it never does here
    let runs = 0;
    let r: VcpuRunResult;
    do {
      r = t.vcpu.run(new Recorder(t.vcpu));
      runs++;
    } while (r.reason === "yield" && runs < 100_000);
    expect(r.reason).toBe("hlt");
    // Kicked at once for the stale readiness, every run would last a few µs: thousands of runs.
    expect(runs).toBeLessThan(200);
  });

  it("immediateSliceMs caps a slice while immediates are queued; bad values are refused", async () => {
    t = realModeVm(SPIN);
    const { result, ms } = await runFromImmediate(t.vcpu, { maxSliceMs: 5000, immediateSliceMs: 10 });
    expect(result.reason).toBe("yield");
    expect(ms).toBeLessThan(2500); // liveness: ended by the immediate cap, not the 5 s maxSliceMs
    expect(() => t!.vcpu.run(new Recorder(t!.vcpu), { immediateSliceMs: -1 })).toThrow(RangeError);
    expect(() => t!.vcpu.run(new Recorder(t!.vcpu), { immediateSliceMs: Number.NaN })).toThrow(RangeError);
  });
});
