import { MemoryLogger, createMmioSpace, createPortIoSpace, type InterruptLine } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { KvmInterruptController, RunLoop, type LoopExitDispatch, type LoopVcpu, type LoopRunResult } from "./internals.js";

/** A scripted vCPU: each run() performs the given exits through the dispatch, then returns the result. */
class FakeVcpu implements LoopVcpu {
  runs = 0;
  stops = 0;
  constructor(
    readonly id: number,
    private readonly script: ((d: LoopExitDispatch) => LoopRunResult)[],
  ) {}
  run(dispatch: LoopExitDispatch): LoopRunResult {
    const step = this.script[Math.min(this.runs++, this.script.length - 1)]!;
    return step(dispatch);
  }
  requestStop(): void {
    this.stops++;
  }
}

function setup() {
  const pio = createPortIoSpace();
  const mmio = createMmioSpace();
  const logger = new MemoryLogger();
  const loop = new RunLoop({ pio, mmio, logger });
  return { pio, mmio, logger, loop };
}

describe("RunLoop", () => {
  it("routes port and MMIO exits (8-byte MMIO through read64/write64) to the address spaces", async () => {
    const { pio, mmio, loop } = setup();
    const log: string[] = [];
    pio.register(0x3f8, 8, "uart", { read: (o, s) => (log.push(`r${s}@${o}`), 0x42), write: (o, s, v) => void log.push(`w${s}@${o}=${v}`) });
    mmio.register(0xd0000000, 0x100, "dev", {
      read: () => 0,
      write: () => {},
      read64: (o) => (log.push(`r8@${o}`), 0x1122334455667788n),
      write64: (o, v) => void log.push(`w8@${o}=${v.toString(16)}`),
    });
    const seen: (number | bigint)[] = [];
    loop.add(
      new FakeVcpu(0, [
        (d) => {
          seen.push(d.pio(0x3fd, 1, false, 0));
          d.pio(0x3f8, 2, true, 0x4141);
          seen.push(d.mmio(0xd0000010, 8, false, 0, 0));
          d.mmio(0xd0000018, 8, true, 0x55667788, 0x11223344);
          seen.push(d.pio(0x1234, 2, false, 0)); // unhandled: all-ones
          return { reason: "shutdown", rip: 0x1000 };
        },
      ]),
    );
    const result = await loop.run();
    expect(log).toEqual(["r1@5", "w2@0=16705", "r8@16", "w8@24=1122334455667788"]);
    expect(seen).toEqual([0x42, 0x1122334455667788n, 0xffff]);
    expect(pio.unhandled).toBe(1);
    expect(result).toEqual({ status: 1, reason: "shutdown", message: "vCPU 0: the guest shut down (triple fault) at RIP 0x1000" });
  });

  it("reports an emulation failure with the vCPU, RIP and instruction bytes in hex", async () => {
    const { loop } = setup();
    loop.add(new FakeVcpu(1, [() => ({ reason: "internal-error", suberror: 1, rip: 0x10203, bytes: new Uint8Array([0x0f, 0xc7, 0x0e]), data: [] })]));
    expect(await loop.run()).toEqual({
      status: 1,
      reason: "error",
      message: "vCPU 1: KVM internal error (emulation failure) at RIP 0x10203, instruction bytes: 0f c7 0e",
    });
  });

  it("stops naming the device when a handler throws, without propagating the exception", async () => {
    const { pio, loop, logger } = setup();
    pio.register(0x500, 1, "flaky-device", {
      read: () => 0,
      write: () => {
        throw new Error("register file on fire");
      },
    });
    const vcpu = new FakeVcpu(0, [(d) => (d.pio(0x500, 1, true, 1), { reason: "yield" })]);
    loop.add(vcpu);
    const result = await loop.run();
    expect(result).toEqual({ status: 1, reason: "error", message: "device flaky-device failed on a pio write at 0x500: register file on fire" });
    expect(vcpu.stops).toBe(1);
    expect(logger.lines.some((l) => l.includes("register file on fire"))).toBe(true);
  });

  it("round-robins vCPUs, lets the event loop run between rounds, and the first stop wins", async () => {
    const { loop } = setup();
    const order: number[] = [];
    let timerFired = false;
    const t = setTimeout(() => (timerFired = true), 2);
    const a = new FakeVcpu(0, [() => (order.push(0), { reason: "yield" })]);
    const b = new FakeVcpu(1, [
      () => {
        order.push(1);
        if (!timerFired) return { reason: "yield" };
        // A stop from a device while running, then a later failure: the first one is reported.
        loop.stop({ status: 7, reason: "debug-exit" });
        return { reason: "internal-error", suberror: 1, rip: 0, bytes: new Uint8Array() };
      },
    ]);
    loop.add(a);
    loop.add(b);
    const result = await loop.run();
    clearTimeout(t);
    expect(timerFired).toBe(true); // the guest kept yielding to the event loop
    expect(order.length).toBeGreaterThan(2);
    expect(order).toEqual(order.map((_, i) => i % 2));
    expect(result).toEqual({ status: 7, reason: "debug-exit" });
    expect(a.stops).toBe(1);
  });

  it("reports a failed VM entry with its hardware reason", async () => {
    const { loop } = setup();
    loop.add(new FakeVcpu(0, [() => ({ reason: "fail-entry", code: 0x21, rip: 0xfff0 })]));
    expect(await loop.run()).toEqual({ status: 1, reason: "error", message: "vCPU 0: VM entry failed, hardware reason 0x21 at RIP 0xfff0" });
  });

  it("maps KVM system events: reset, power off, crash", async () => {
    for (const [type, expected] of [
      [2, { status: 0, reason: "reset" }],
      [1, { status: 0, reason: "shutdown" }],
      [3, { status: 1, reason: "error" }],
    ] as const) {
      const { loop } = setup();
      loop.add(new FakeVcpu(0, [() => ({ reason: "system-event", type })]));
      expect(await loop.run()).toMatchObject(expected);
    }
  });

  it("stops with reason halt only when every vCPU is parked", async () => {
    const { loop } = setup();
    let rounds = 0;
    loop.add({ id: 0, run: () => (rounds++, { reason: "yield" }), requestStop: () => {}, parked: () => true });
    loop.add({ id: 1, run: () => ({ reason: "yield" }), requestStop: () => {}, parked: () => rounds >= 3 });
    expect(await loop.run()).toEqual({ status: 0, reason: "halt", message: "all vCPUs halted with interrupts disabled" });
    expect(rounds).toBe(3);
  });

  it("turns a failing KVM_RUN into an error result", async () => {
    const { loop } = setup();
    loop.add({ id: 3, run: () => { throw new Error("EFAULT"); }, requestStop: () => {} });
    expect(await loop.run()).toEqual({ status: 1, reason: "error", message: "vCPU 3: KVM_RUN failed: EFAULT" });
  });

  it("pause() stops entering vCPUs until resume(), without spinning; the vCPU's exits go on afterwards", async () => {
    const { pio, loop } = setup();
    let writes = 0;
    let finish = false;
    pio.register(0x80, 1, "post", { read: () => 0, write: () => void writes++ });
    const vcpu = new FakeVcpu(0, [(d) => (d.pio(0x80, 1, true, 1), finish ? { reason: "hlt" } : { reason: "yield" })]);
    loop.add(vcpu);
    const running = loop.run();
    await new Promise((r) => setTimeout(r, 5));
    expect(loop.pause()).toBe(true);
    expect(loop.pause()).toBe(false);
    expect(loop.paused).toBe(true);
    await new Promise((r) => setImmediate(r));
    const runsWhenPaused = vcpu.runs;
    expect(runsWhenPaused).toBeGreaterThan(0);
    // 20 ms of event-loop turns: a spinning loop would call run() hundreds of times.
    await new Promise((r) => setTimeout(r, 20));
    expect(vcpu.runs).toBe(runsWhenPaused);
    expect(writes).toBe(runsWhenPaused);
    expect(loop.resume()).toBe(true);
    expect(loop.resume()).toBe(false);
    await new Promise((r) => setTimeout(r, 5));
    expect(vcpu.runs).toBeGreaterThan(runsWhenPaused);
    finish = true;
    expect(await running).toEqual({ status: 0, reason: "halt", message: "vCPU 0 halted" });
  });

  it("pause() from an exit handler makes that vCPU yield; stop() ends a paused loop", async () => {
    const { pio, loop } = setup();
    pio.register(0x80, 1, "post", { read: () => 0, write: () => void loop.pause() });
    const vcpu = new FakeVcpu(0, [(d) => (d.pio(0x80, 1, true, 1), { reason: "yield" })]);
    loop.add(vcpu);
    const running = loop.run();
    await new Promise((r) => setTimeout(r, 10));
    expect(vcpu.stops).toBe(1);
    expect(vcpu.runs).toBe(1);
    loop.stop({ status: 1, reason: "stopped", message: "stopped: test" });
    expect(await running).toEqual({ status: 1, reason: "stopped", message: "stopped: test" });
    expect(loop.paused).toBe(false);
    expect(loop.pause()).toBe(false);
  });
});

/** A scripted threaded vCPU: each runOnThread() resolves when kicked or stopped, or with the script's result. */
class FakeThreadVcpu implements LoopVcpu {
  starts = 0;
  kicks = 0;
  joins = 0;
  private end: ((r: LoopRunResult) => void) | undefined;
  constructor(readonly id: number) {}
  run(): LoopRunResult {
    throw new Error("a threaded loop never calls run()");
  }
  requestStop(): void {}
  runOnThread(_dispatch?: LoopExitDispatch): Promise<LoopRunResult> {
    this.starts++;
    return new Promise((resolve) => (this.end = resolve));
  }
  /** The thread's run ends with `r` (an exit that needs the machine). */
  finish(r: LoopRunResult): void {
    this.end?.(r);
    this.end = undefined;
  }
  get running(): boolean {
    return this.end !== undefined;
  }
  kick(): void {
    this.kicks++;
    this.finish({ reason: "yield" });
  }
  stopThread(): boolean {
    this.joins++;
    this.finish({ reason: "yield" });
    return true;
  }
}

describe("RunLoop with vcpuThreads", () => {
  const turn = () => new Promise((r) => setTimeout(r, 1));

  it("runs every vCPU's thread at once, joins them all on pause() and starts them again on resume()", async () => {
    const loop = new RunLoop({ pio: createPortIoSpace(), mmio: createMmioSpace(), logger: new MemoryLogger(), vcpuThreads: true });
    const vcpus = [new FakeThreadVcpu(0), new FakeThreadVcpu(1)];
    for (const v of vcpus) loop.add(v);
    const running = loop.run();
    await turn();
    expect(vcpus.map((v) => [v.starts, v.running])).toEqual([[1, true], [1, true]]);
    expect(loop.pause()).toBe(true);
    expect(vcpus.map((v) => [v.joins, v.running])).toEqual([[1, false], [1, false]]);
    await turn();
    expect(vcpus.map((v) => v.starts)).toEqual([1, 1]);
    expect(loop.resume()).toBe(true);
    await turn();
    expect(vcpus.map((v) => [v.starts, v.running])).toEqual([[2, true], [2, true]]);
    vcpus[1]!.finish({ reason: "system-event", type: 1 });
    expect(await running).toEqual({ status: 0, reason: "shutdown", message: "vCPU 1 powered off" });
    // The other thread was kicked out of KVM_RUN, not left running.
    expect(vcpus[0]!.kicks).toBe(1);
    expect(vcpus[0]!.running).toBe(false);
  });

  it("only kicks the threads when paused from an exit handler, and stop() kicks them all", async () => {
    const pio = createPortIoSpace();
    const loop = new RunLoop({ pio, mmio: createMmioSpace(), logger: new MemoryLogger(), vcpuThreads: true });
    let dispatch: LoopExitDispatch | undefined;
    const vcpu = new FakeThreadVcpu(0);
    vcpu.runOnThread = (d: LoopExitDispatch) => ((dispatch = d), FakeThreadVcpu.prototype.runOnThread.call(vcpu));
    pio.register(0x80, 1, "post", { read: () => 0, write: () => void loop.pause() });
    loop.add(vcpu);
    const running = loop.run();
    await turn();
    dispatch!.pio(0x80, 1, true, 1);
    expect([vcpu.kicks, vcpu.joins]).toEqual([1, 0]);
    loop.stop({ status: 1, reason: "stopped", message: "stopped: test" });
    expect(await running).toEqual({ status: 1, reason: "stopped", message: "stopped: test" });
    expect(vcpu.starts).toBe(1);
  });

  it("stops on a device fault during a thread's exit, naming the device, and kicks every thread", async () => {
    const pio = createPortIoSpace();
    const loop = new RunLoop({ pio, mmio: createMmioSpace(), logger: new MemoryLogger(), vcpuThreads: true });
    pio.register(0x80, 1, "post", { read: () => 0, write: () => { throw new Error("broken"); } });
    const vcpus = [new FakeThreadVcpu(0), new FakeThreadVcpu(1)];
    let dispatch: LoopExitDispatch | undefined;
    vcpus[0]!.runOnThread = (d: LoopExitDispatch) => ((dispatch = d), FakeThreadVcpu.prototype.runOnThread.call(vcpus[0]));
    for (const v of vcpus) loop.add(v);
    const running = loop.run();
    await turn();
    expect(dispatch!.pio(0x80, 1, true, 1)).toBe(0xff); // a faulting device answers all ones
    expect(await running).toEqual({ status: 1, reason: "error", message: "device post failed on a pio write at 0x80: broken" });
    expect(vcpus.map((v) => [v.kicks, v.running])).toEqual([[1, false], [1, false]]);
  });

  it("stops with halt once every thread's vCPU waits in the kernel halted with interrupts disabled", async () => {
    const loop = new RunLoop({ pio: createPortIoSpace(), mmio: createMmioSpace(), logger: new MemoryLogger(), vcpuThreads: true });
    const state = [
      { blocked: false, parked: false, looks: 0 },
      { blocked: true, parked: true, looks: 0 },
    ];
    const vcpus = [new FakeThreadVcpu(0), new FakeThreadVcpu(1)].map((v, i) =>
      Object.assign(v, { blocked: () => state[i]!.blocked, parked: () => (state[i]!.looks++, state[i]!.parked) }),
    );
    for (const v of vcpus) loop.add(v);
    let result: unknown;
    const running = loop.run().then((r) => (result = r));
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await sleep(40);
    // vCPU 0 computes: its thread is never stopped to look.
    expect(vcpus.map((v) => [v.joins, v.running])).toEqual([[0, true], [0, true]]);
    // Both wait in the kernel, but vCPU 0 with interrupts on (an idle guest): looked at, then run on.
    state[0]!.blocked = true;
    await sleep(60);
    expect(state[0]!.looks).toBeGreaterThan(0);
    expect(vcpus.every((v) => v.joins > 0 && v.starts === v.joins + 1 && v.running)).toBe(true);
    expect(result).toBeUndefined();
    state[0]!.parked = true;
    await running;
    expect(result).toEqual({ status: 0, reason: "halt", message: "all vCPUs halted with interrupts disabled" });
    expect(vcpus.map((v) => v.running)).toEqual([false, false]);
  });

  it("ends the halt watch quietly when a vCPU's statistics cannot be read any more (closed under it)", async () => {
    const loop = new RunLoop({ pio: createPortIoSpace(), mmio: createMmioSpace(), logger: new MemoryLogger(), vcpuThreads: true });
    let reads = 0;
    const vcpu = Object.assign(new FakeThreadVcpu(0), {
      blocked: () => {
        reads++;
        throw new Error("vcpu (closed)");
      },
      parked: () => true,
    });
    loop.add(vcpu);
    const running = loop.run();
    await new Promise((r) => setTimeout(r, 60));
    expect(reads).toBe(1);
    loop.stop({ status: 1, reason: "stopped", message: "stopped: test" });
    expect(await running).toEqual({ status: 1, reason: "stopped", message: "stopped: test" });
  });

  it("turns a rejected thread into an error result", async () => {
    const loop = new RunLoop({ pio: createPortIoSpace(), mmio: createMmioSpace(), logger: new MemoryLogger(), vcpuThreads: true });
    const vcpu = new FakeThreadVcpu(2);
    vcpu.runOnThread = () => Promise.reject(new Error("EFAULT"));
    loop.add(vcpu);
    expect(await loop.run()).toEqual({ status: 1, reason: "error", message: "vCPU 2: KVM_RUN failed: EFAULT" });
  });
});

describe("KvmInterruptController", () => {
  it("shares a GSI wired-OR between sources and forwards only level changes", () => {
    const calls: string[] = [];
    const ctl = new KvmInterruptController({ irqLine: (g, l) => void calls.push(`${g}:${l ? 1 : 0}`), signalMsi: (a, d) => void calls.push(`msi ${a.toString(16)} ${d}`) });
    const a: InterruptLine = ctl.line(17);
    const b: InterruptLine = ctl.line(17);
    a.set(true);
    b.set(true);
    a.set(false);
    b.set(false);
    ctl.signal({ address: 0xfee00000, data: 0x41 });
    expect(calls).toEqual(["17:1", "17:0", "msi fee00000 65"]);
    expect(() => ctl.line(24)).toThrow(RangeError);
  });

  it("offers irqfd with resample on the line's GSI when the VM has it, through every source", () => {
    const calls: string[] = [];
    const sink = {
      irqLine: () => {},
      signalMsi: () => {},
      irqfd: (fd: number, gsi: number, resample: number) => {
        calls.push(`+${fd}@${gsi}/${resample}`);
        return { remove: () => void calls.push(`-${fd}@${gsi}`) };
      },
    };
    expect(new KvmInterruptController({ irqLine: () => {}, signalMsi: () => {} }).line(5).irqfd).toBeUndefined();
    const ctl = new KvmInterruptController(sink);
    const a = ctl.line(10);
    const b = ctl.line(11);
    const h = a.irqfd!(30, 31);
    b.irqfd!(32, 33);
    h.remove();
    expect(calls).toEqual(["+30@10/31", "+32@11/33", "-30@10"]);
  });
});
