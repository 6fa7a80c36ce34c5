import { afterEach, describe, expect, it } from "vitest";
import type { Vcpu, VcpuExitDispatch } from "../src/index.js";
import { CODE, Recorder, realModeVm, type TestVm } from "./support/guest.js";
import { kvmOk } from "./support/kvm.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A second real-mode vCPU at the same code, with its own registers. */
function addVcpu(t: TestVm, id: number, regs: { rdx: number; rbx: number }): Vcpu {
  const v = t.vm.createVcpu(id);
  v.setSregs({ cs: { ...v.getSregs().cs, base: 0, selector: 0 } });
  v.setRegs({ rip: CODE, rflags: 2, rsp: 0x8000, ...regs });
  return v;
}

/**
 * Echo devices: a read of port P gives P's next count plus P*0x100; the write to P+1 and to MMIO are recorded;
 * an MMIO read at A+2 gives the value last written at A, inverted.
 */
class Echo implements VcpuExitDispatch {
  readonly ins = new Map<number, number[]>();
  readonly outs = new Map<number, number[]>();
  readonly mmioWrites = new Map<number, number[]>();
  private readonly lastWrite = new Map<number, number>();

  pio(port: number, size: number, isWrite: boolean, value: number): number {
    const list = (m: Map<number, number[]>) => m.get(port) ?? m.set(port, []).get(port)!;
    if (isWrite) {
      list(this.outs).push(value);
      return 0;
    }
    const ins = list(this.ins);
    const v = (ins.length + port * 0x100) & 0xffff;
    ins.push(v);
    return v;
  }

  mmio(address: number, size: number, isWrite: boolean, lo: number): number {
    if (isWrite) {
      (this.mmioWrites.get(address) ?? this.mmioWrites.set(address, []).get(address)!).push(lo);
      this.lastWrite.set(address, lo);
      return 0;
    }
    return (this.lastWrite.get(address - 2)! ^ 0xffff) & 0xffff;
  }
}

// Each vCPU: read its port (dx), write the value to MMIO at 0x20000+bx, read it back inverted from bx+2, write that
// to port dx+1; `count` times (cx), then hlt (no irqchip: the thread ends with "hlt").
const ECHO_LOOP = (count: number) => `
  mov $0x2000, %si; mov %si, %ds
  mov $${count}, %cx
  1: in %dx, %ax
     mov %ax, (%bx)
     mov 2(%bx), %ax
     inc %dx; out %ax, %dx; dec %dx
     loop 1b
  hlt`;
const ENDLESS_ECHO = `
  1: in %dx, %ax
     inc %dx; out %ax, %dx; dec %dx
     jmp 1b`;

describe.skipIf(!kvmOk)("Vcpu.runOnThread: KVM_RUN on a thread of the vCPU's own (real /dev/kvm)", () => {
  let t: TestVm | undefined;
  afterEach(() => t?.close());

  it("hands port and MMIO exits of two vCPUs running at once to the JS thread with the right values", async () => {
    const count = 300;
    t = realModeVm(ECHO_LOOP(count));
    t.vcpu.setRegs({ rdx: 0x20, rbx: 0x100 });
    const second = addVcpu(t, 1, { rdx: 0x40, rbx: 0x200 });
    const echo = new Echo();
    const results = await Promise.all([t.vcpu.runOnThread(echo), second.runOnThread(echo, { spinUs: 20 })]);
    expect(results).toEqual([{ reason: "hlt" }, { reason: "hlt" }]);
    for (const [port, mmio] of [[0x20, 0x20100], [0x40, 0x20200]] as const) {
      const expected = Array.from({ length: count }, (_, i) => (i + port * 0x100) & 0xffff);
      expect(echo.ins.get(port)).toEqual(expected);
      expect(echo.mmioWrites.get(mmio)).toEqual(expected);
      expect(echo.outs.get(port + 1)).toEqual(expected.map((v) => v ^ 0xffff));
    }
  });

  it("passes 1, 2 and 4 byte port accesses as run() does", async () => {
    t = realModeVm(`
      mov $0x11, %al;       out %al, $0x10
      mov $0x2233, %ax;     out %ax, $0x10
      mov $0x44556677, %eax; out %eax, $0x10
      in $0x20, %eax; out %eax, $0x30
      hlt`);
    const r = new Recorder(t.vcpu);
    r.pioRead = () => 0xdeadbeef;
    expect(await t.vcpu.runOnThread(r)).toEqual({ reason: "hlt" });
    expect(r.pios).toEqual([
      [0x10, 1, true, 0x11],
      [0x10, 2, true, 0x2233],
      [0x10, 4, true, 0x44556677],
      [0x20, 4, false, 0],
      [0x30, 4, true, 0xdeadbeef],
    ]);
  });

  it("ends with yield after the exit whose callback called requestStop, and goes on when started again", async () => {
    t = realModeVm(`mov $1, %al; out %al, $0x10; mov $2, %al; out %al, $0x10; hlt`);
    const r = new Recorder(t.vcpu);
    r.stopWhen = () => r.pios.length === 1;
    expect(await t.vcpu.runOnThread(r)).toEqual({ reason: "yield" });
    expect(r.pios).toEqual([[0x10, 1, true, 1]]);
    expect(await t.vcpu.runOnThread(r)).toEqual({ reason: "hlt" });
    expect(r.pios.map((p) => p[3])).toEqual([1, 2]);
  });

  it("kicks a guest that never exits out of KVM_RUN", async () => {
    t = realModeVm(`1: jmp 1b`);
    const run = t.vcpu.runOnThread(new Recorder(t.vcpu));
    await sleep(30);
    t.vcpu.kick();
    expect(await run).toEqual({ reason: "yield" });
    // A kick with no thread running makes the next start end at once, as it does for run().
    t.vcpu.kick();
    expect(await t.vcpu.runOnThread(new Recorder(t.vcpu))).toEqual({ reason: "yield" });
  });

  it.each([0, 50])("stopThread joins a thread that waits on an exit's answer, answering it, and no exit is lost or answered twice (spinUs %i)", async (spinUs) => {
    t = realModeVm(ENDLESS_ECHO);
    t.vcpu.setRegs({ rdx: 0x20 });
    const echo = new Echo();
    for (let round = 0; round < 3; round++) {
      const run = t.vcpu.runOnThread(echo, { spinUs });
      await sleep(20);
      expect(t.vcpu.stopThread()).toBe(true);
      // Joined: the vCPU is out of KVM_RUN, its state readable at once (RIP inside the loop).
      const rip = Number(t.vcpu.getRegs().rip);
      expect(rip).toBeGreaterThanOrEqual(CODE);
      expect(rip).toBeLessThan(CODE + 16);
      expect(await run).toEqual({ reason: "yield" });
    }
    const ins = echo.ins.get(0x20)!;
    const outs = echo.outs.get(0x21)!;
    expect(ins.length).toBeGreaterThan(3);
    expect(ins).toEqual(Array.from({ length: ins.length }, (_, i) => i + 0x2000));
    // The last `in` may be answered but not yet completed by KVM_RUN (it completes on the next entry).
    expect(ins.length - outs.length).toBeGreaterThanOrEqual(0);
    expect(ins.length - outs.length).toBeLessThanOrEqual(1);
    expect(outs).toEqual(ins.slice(0, outs.length));
  });

  it("keeps JS timers firing while a vCPU thread's exits keep the JS thread busy (spinning for the next exit)", async () => {
    t = realModeVm(ENDLESS_ECHO);
    t.vcpu.setRegs({ rdx: 0x20 });
    const echo = new Echo();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const run = t.vcpu.runOnThread(echo, { spinUs: 200 });
    // Waits for both to pile up, however fast this host is: 20 timer ticks among 100 answered exits.
    const answered = () => echo.ins.get(0x20)?.length ?? 0;
    for (const deadline = Date.now() + 20_000; (ticks < 20 || answered() < 100) && Date.now() < deadline; ) await sleep(20);
    clearInterval(timer);
    t.vcpu.kick();
    expect(await run).toEqual({ reason: "yield" });
    expect(answered()).toBeGreaterThanOrEqual(100);
    expect(ticks).toBeGreaterThanOrEqual(20);
  });

  it("rejects with the error a callback threw", async () => {
    t = realModeVm(`out %al, $0x10; hlt`);
    const run = t.vcpu.runOnThread({
      pio: () => {
        throw new Error("device exploded");
      },
      mmio: () => 0,
    });
    await expect(run).rejects.toThrow("device exploded");
  });

  it("close() ends a running thread: its promise settles with yield", async () => {
    t = realModeVm(`1: jmp 1b`);
    const run = t.vcpu.runOnThread(new Recorder(t.vcpu));
    await sleep(10);
    t.vcpu.close();
    expect(await run).toEqual({ reason: "yield" });
  });

  it("refuses a second run or thread while one is active, and bad options", async () => {
    t = realModeVm(`1: jmp 1b`);
    const r = new Recorder(t.vcpu);
    expect(() => t!.vcpu.runOnThread(r, { spinUs: -1 })).toThrow(RangeError);
    const run = t.vcpu.runOnThread(r);
    expect(() => t!.vcpu.runOnThread(r)).toThrow(/already active/);
    expect(() => t!.vcpu.run(r)).toThrow(/already active/);
    expect(t.vcpu.stopThread()).toBe(true);
    expect(await run).toEqual({ reason: "yield" });
  });
});
