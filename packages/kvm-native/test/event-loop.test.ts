import { afterEach, describe, expect, it } from "vitest";
import { Recorder, realModeVm, type TestVm } from "./support/guest.js";
import { kvmOk } from "./support/kvm.js";
import { runUntil } from "./support/run-until.js";

// A guest that never exits: only the event-loop watcher can make run() return.
const SPIN = `1: inc %eax; jmp 1b`;

describe.skipIf(!kvmOk)("the event loop keeps running while a vCPU runs (real /dev/kvm)", () => {
  let t: TestVm | undefined;
  afterEach(() => t?.close());

  it("fires a setTimeout during a guest loop that never exits (liveness: lateness < 100 ms)", async () => {
    t = realModeVm(SPIN);
    const start = performance.now();
    // A flag, not the lateness's sign: libuv counts whole milliseconds, so the timer may fire at 49.x ms by
    // performance.now() (a lateness a little below 0), which once read as "not fired yet" until the test gave up.
    let fired = false;
    let lateness = 0;
    setTimeout(() => {
      fired = true;
      lateness = performance.now() - start - 50;
    }, 50);
    const { result, runs } = await runUntil(t.vcpu, new Recorder(t.vcpu), () => fired, { timeoutMs: 3000 });
    expect(result.reason).toBe("yield");
    expect(runs).toBeGreaterThan(1);
    expect(lateness).toBeLessThan(100);
    expect(t.vcpu.getRegs().rax).toBeGreaterThan(0); // the guest did run
  });

  it("serves file I/O completions (the threadpool wakes the loop) while the guest spins", async () => {
    t = realModeVm(SPIN);
    const { readFile } = await import("node:fs/promises");
    let done = false;
    const p = readFile(new URL(import.meta.url)).then((b) => { done = b.length > 0; });
    await runUntil(t.vcpu, new Recorder(t.vcpu), () => done, { timeoutMs: 3000 });
    await p;
    expect(done).toBe(true);
  });

  it("returns within maxSliceMs even when the loop has no work", () => {
    t = realModeVm(SPIN);
    const start = performance.now();
    const r = t.vcpu.run(new Recorder(t.vcpu), { maxSliceMs: 20 });
    const took = performance.now() - start;
    expect(r.reason).toBe("yield");
    expect(took).toBeLessThan(1000); // liveness only
    expect(() => t!.vcpu.run(new Recorder(t!.vcpu), { maxSliceMs: -1 })).toThrow(RangeError);
    expect(() => t!.vcpu.run(new Recorder(t!.vcpu), { immediateSliceMs: Number.NaN })).toThrow(RangeError);
  });
});
