import { afterEach, describe, expect, it } from "vitest";
import { CODE, Recorder, realModeVm, runSync, type TestVm } from "./support/guest.js";
import { kvmOk } from "./support/kvm.js";
import { longModeVm } from "./support/long-mode.js";

describe.skipIf(!kvmOk)("Vcpu.run exit dispatch (real /dev/kvm)", () => {
  let t: TestVm | undefined;
  afterEach(() => t?.close());

  it("passes port writes of 1, 2 and 4 bytes and returns port reads truncated to the width", () => {
    t = realModeVm(`
      mov $0x11, %al;       out %al, $0x10
      mov $0x2233, %ax;     out %ax, $0x10
      mov $0x44556677, %eax; out %eax, $0x10
      in $0x20, %al;  out %al, $0x30
      in $0x20, %ax;  out %ax, $0x30
      in $0x20, %eax; out %eax, $0x30
      hlt`);
    const r = new Recorder(t.vcpu);
    r.pioRead = (_port, size) => (size === 1 ? 0x1ab : size === 2 ? 0x1abcd : 0xdeadbeef);
    expect(runSync(t.vcpu, r)).toEqual({ reason: "hlt" });
    expect(r.pios).toEqual([
      [0x10, 1, true, 0x11],
      [0x10, 2, true, 0x2233],
      [0x10, 4, true, 0x44556677],
      [0x20, 1, false, 0],
      [0x30, 1, true, 0xab],
      [0x20, 2, false, 0],
      [0x30, 2, true, 0xabcd],
      [0x20, 4, false, 0],
      [0x30, 4, true, 0xdeadbeef],
    ]);
  });

  it("calls pio once per element for rep outsb and rep insb", () => {
    t = realModeVm(`
      cld
      mov $msg, %si; mov $5, %cx; mov $0x10, %dx; rep outsb
      mov $0x3000, %di; mov $4, %cx; mov $0x20, %dx; rep insb
      hlt
      msg: .ascii "hello"`);
    const r = new Recorder(t.vcpu);
    let next = 0x61;
    r.pioRead = () => next++;
    expect(runSync(t.vcpu, r)).toEqual({ reason: "hlt" });
    const outs = r.pios.filter((p) => p[0] === 0x10);
    expect(outs.map((p) => String.fromCharCode(p[3]))).toEqual(["h", "e", "l", "l", "o"]);
    expect(outs.every((p) => p[1] === 1 && p[2])).toBe(true);
    expect(r.pios.filter((p) => p[0] === 0x20)).toHaveLength(4);
    expect(Array.from(t.ram.subarray(0x3000, 0x3004))).toEqual([0x61, 0x62, 0x63, 0x64]);
  });

  it("passes MMIO writes and reads of 1, 2 and 4 bytes (real mode)", () => {
    t = realModeVm(`
      mov $0x2000, %ax; mov %ax, %ds
      movb $0x12, 0x10
      movw $0x3456, 0x20
      movl $0x789abcde, 0x30
      mov 0x40, %al;  out %al, $0x30
      mov 0x42, %ax;  out %ax, $0x30
      mov 0x44, %eax; out %eax, $0x30
      hlt`);
    const r = new Recorder(t.vcpu);
    r.mmioRead = (addr, size) => (size === 1 ? 0x5a : size === 2 ? 0xa55a : 0xf00dface) + (addr & 0);
    expect(runSync(t.vcpu, r)).toEqual({ reason: "hlt" });
    expect(r.mmios).toEqual([
      [0x20010, 1, true, 0x12, 0],
      [0x20020, 2, true, 0x3456, 0],
      [0x20030, 4, true, 0x789abcde, 0],
      [0x20040, 1, false, 0, 0],
      [0x20042, 2, false, 0, 0],
      [0x20044, 4, false, 0, 0],
    ]);
    expect(r.pios.map((p) => p[3])).toEqual([0x5a, 0xa55a, 0xf00dface]);
  });

  it("passes 8-byte MMIO as two halves and accepts bigint and number read results (64-bit guest)", () => {
    t = longModeVm(`
      mov $0x40000000, %rbx
      mov $0x1122334455667788, %rax
      mov %rax, (%rbx)
      mov 8(%rbx), %rax;  out %eax, $0x30; shr $32, %rax; out %eax, $0x30
      mov 16(%rbx), %rax; out %eax, $0x30; shr $32, %rax; out %eax, $0x30
      hlt`);
    const r = new Recorder(t.vcpu);
    r.mmioRead = (addr) => (addr === 0x40000008 ? 0xcafebabe12345678n : 0x1_0000_0002);
    expect(runSync(t.vcpu, r)).toEqual({ reason: "hlt" });
    expect(r.mmios).toEqual([
      [0x40000000, 8, true, 0x55667788, 0x11223344],
      [0x40000008, 8, false, 0, 0],
      [0x40000010, 8, false, 0, 0],
    ]);
    expect(r.pios.map((p) => p[3])).toEqual([0x12345678, 0xcafebabe, 2, 1]);
  });

  it("returns hlt without an irqchip, and run resumes after it", () => {
    t = realModeVm(`hlt; out %al, $0x10; hlt`);
    const r = new Recorder(t.vcpu);
    expect(runSync(t.vcpu, r)).toEqual({ reason: "hlt" });
    expect(r.pios).toHaveLength(0);
    expect(runSync(t.vcpu, r)).toEqual({ reason: "hlt" });
    expect(r.pios).toHaveLength(1);
  });

  it("reports an instruction the emulator lacks as internal-error with RIP and the bytes", () => {
    t = longModeVm(`nop; nop; int3; hlt`);
    const res = runSync(t.vcpu, new Recorder(t.vcpu));
    expect(res.reason).toBe("internal-error");
    if (res.reason !== "internal-error") return;
    expect(res.suberror).toBe(1);
    expect(res.vcpuId).toBe(0);
    expect(res.rip).toBe(BigInt(CODE + 2));
    expect(res.bytes[0]).toBe(0xcc);
  });

  it("returns yield after a callback calls requestStop, and continues where it stopped", () => {
    t = realModeVm(`out %al, $0x10; out %al, $0x11; out %al, $0x12; hlt`);
    const r = new Recorder(t.vcpu);
    r.stopWhen = (_k, port) => port === 0x11;
    expect(runSync(t.vcpu, r)).toEqual({ reason: "yield" });
    expect(r.pios.map((p) => p[0])).toEqual([0x10, 0x11]);
    expect(runSync(t.vcpu, r)).toEqual({ reason: "hlt" });
    expect(r.pios.map((p) => p[0])).toEqual([0x10, 0x11, 0x12]);
  });

  it("kick() outside a run makes the next run return yield at once", () => {
    t = realModeVm(`out %al, $0x10; hlt`);
    const r = new Recorder(t.vcpu);
    t.vcpu.kick();
    expect(t.vcpu.run(r)).toEqual({ reason: "yield" });
    expect(r.pios).toHaveLength(0);
    expect(runSync(t.vcpu, r)).toEqual({ reason: "hlt" });
  });

  it("rethrows an exception thrown by a dispatch callback", () => {
    t = realModeVm(`out %al, $0x10; hlt`);
    const boom = new Error("device exploded");
    expect(() => runSync(t!.vcpu, { pio: () => { throw boom; }, mmio: () => 0 })).toThrow(boom);
    expect(runSync(t.vcpu, new Recorder(t.vcpu))).toEqual({ reason: "hlt" });
  });

  it("rejects a dispatch without handlers and a non-number read result", () => {
    t = realModeVm(`in $0x20, %al; hlt`);
    expect(() => t!.vcpu.run({} as never)).toThrow(TypeError);
    expect(() => runSync(t!.vcpu, { pio: () => "x" as never, mmio: () => 0 })).toThrow(/must return a number/);
  });

  it("runs two vCPUs of one VM in turn on the JS thread, each with its own registers", () => {
    t = realModeVm(`
      mov $0xaa, %al; out %al, $0x10; hlt
      second: mov $0xbb, %al; out %al, $0x10; hlt`);
    const second = t.vm.createVcpu(1);
    second.setSregs({ cs: { ...second.getSregs().cs, base: 0, selector: 0 } });
    second.setRegs({ rip: CODE + 5, rflags: 2 });
    const r0 = new Recorder(t.vcpu);
    const r1 = new Recorder(second);
    expect(runSync(second, r1)).toEqual({ reason: "hlt" });
    expect(runSync(t.vcpu, r0)).toEqual({ reason: "hlt" });
    expect(r0.pios).toEqual([[0x10, 1, true, 0xaa]]);
    expect(r1.pios).toEqual([[0x10, 1, true, 0xbb]]);
    expect(second.id).toBe(1);
  });

  it("reports a triple fault as shutdown", () => {
    t = longModeVm(`lidt idtr; ud2
      idtr: .word 0; .quad 0`);
    const res = runSync(t.vcpu, new Recorder(t.vcpu));
    expect(res.reason).toBe("shutdown");
  });
});

describe.skipIf(!kvmOk)("the PM timer answered in the run loop (real /dev/kvm)", () => {
  it("serves reads of its ports without a dispatch call, counting at 3.579545 MHz from the given start", () => {
    const t = realModeVm(`
      mov $0x608, %dx
      inl (%dx), %eax
      mov %eax, %ebx
      mov $20000, %ecx
    1: loop 1b
      inl (%dx), %eax
      sub %ebx, %eax
      and $0xffffff, %eax
      outl %eax, $0x10                # the ticks between the two reads, to JS
      mov $0x60a, %dx
      inb (%dx), %al                  # bits 23:16 of the counter, a byte read at +2
      outb %al, $0x11
      hlt`);
    try {
      const start = process.hrtime.bigint();
      t.vcpu.setPmTimer(0x608, start);
      const r = new Recorder(t.vcpu);
      expect(runSync(t.vcpu, r)).toEqual({ reason: "hlt" });
      const elapsedTicks = Number(((process.hrtime.bigint() - start) * 3_579_545n) / 1_000_000_000n);
      // Only the two outs reached JS: the three PM timer reads never did.
      expect(r.pios.map((p) => p[0])).toEqual([0x10, 0x11]);
      const between = r.pios[0]![3];
      expect(between).toBeGreaterThan(0);
      expect(between).toBeLessThanOrEqual(elapsedTicks);
      // Read before the host's own clock read: equal, or one below if the counter crossed a 2^16 boundary since.
      expect([(elapsedTicks >> 16) & 0xff, ((elapsedTicks >> 16) - 1) & 0xff]).toContain(r.pios[1]![3]);
      expect(() => t.vcpu.setPmTimer(0xfffe, start)).toThrow(RangeError);
    } finally {
      t.close();
    }
  });
});
