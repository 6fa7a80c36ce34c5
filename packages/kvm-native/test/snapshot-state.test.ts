// The x86 state a snapshot saves and restores, round trips under the real /dev/kvm: XSAVE, XCRs, vCPU events,
// debug registers, the TSC rate, MSRs; the irqchips, the PIT and kvmclock of the VM.
import { afterEach, describe, expect, it } from "vitest";
import { Irqchip, KvmCap, VcpuEventsFlag, X86StateSize } from "../src/index.js";
import type { TestVm } from "./support/guest.js";
import { kvmOk } from "./support/kvm.js";
import { longModeVm } from "./support/long-mode.js";

const u32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at, true);
const u64 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getBigUint64(at, true);
const setU32 = (b: Uint8Array, at: number, v: number) => new DataView(b.buffer, b.byteOffset).setUint32(at, v, true);
const setU64 = (b: Uint8Array, at: number, v: bigint) => new DataView(b.buffer, b.byteOffset).setBigUint64(at, v, true);

// Offsets in the structs (linux/kvm.h, x86 asm/kvm.h; the Intel SDM's XSAVE layout).
const XSAVE_MXCSR = 24;
const XSAVE_XMM0 = 160;
const XSAVE_XSTATE_BV = 512;
const EVENTS_NMI_PENDING = 13;
const EVENTS_NMI_MASKED = 14;
const EVENTS_FLAGS = 20;
const DEBUGREGS_DR7 = 40;
const PIC_IMR = 2;
const PIC_IRQ_BASE = 5;
const IOAPIC_ID = 12;
const IOAPIC_REDIRTBL = 24;
const PIT_CHANNEL = 24; // bytes per struct kvm_pit_channel_state
const PIT_MODE = 13;

describe.skipIf(!kvmOk)("x86 vCPU state for snapshots (real /dev/kvm)", () => {
  let t: TestVm | undefined;
  afterEach(() => t?.close());

  it("reads XCR0 with x87 and SSE, and XCR0 set to x87|SSE reads back", () => {
    t = longModeVm(`hlt`);
    const xcr0 = t.vcpu.getXcrs().find((x) => x.xcr === 0);
    expect(xcr0).toBeDefined();
    expect(xcr0!.value & 1n).toBe(1n);
    t.vcpu.setXcrs([{ xcr: 0, value: 3 }]);
    expect(t.vcpu.getXcrs().find((x) => x.xcr === 0)!.value).toBe(3n);
    expect(() => t!.vcpu.setXcrs([{ xcr: 0, value: 2 }])).toThrow(/KVM_SET_XCRS/); // x87 is mandatory
  });

  it("round-trips the XSAVE area (MXCSR, XMM0, the XSTATE_BV header)", () => {
    t = longModeVm(`hlt`);
    const size = t.vcpu.xsaveSize();
    expect(size).toBe(Math.max(X86StateSize.XSAVE, t.vm.checkExtension(KvmCap.XSAVE2)));
    const area = t.vcpu.getXsave();
    expect(area.byteLength).toBe(size);
    setU32(area, XSAVE_MXCSR, 0x1fa0);
    area.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], XSAVE_XMM0);
    area[XSAVE_XSTATE_BV] = area[XSAVE_XSTATE_BV]! | 0x3; // x87 and SSE state are in the image
    t.vcpu.setXsave(area);
    const back = t.vcpu.getXsave();
    expect(u32(back, XSAVE_MXCSR)).toBe(0x1fa0);
    expect(Array.from(back.subarray(XSAVE_XMM0, XSAVE_XMM0 + 16))).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(back[XSAVE_XSTATE_BV]! & 0x3).toBe(0x3);
    expect(() => t!.vcpu.setXsave(new Uint8Array(size - 8))).toThrow(RangeError);
  });

  it("restores a pending, masked NMI through the vCPU events (the VALID flags are set for the caller)", () => {
    t = longModeVm(`hlt`);
    const events = t.vcpu.getVcpuEvents();
    expect(events.byteLength).toBe(X86StateSize.VCPU_EVENTS);
    expect(events[EVENTS_NMI_PENDING]).toBe(0);
    events[EVENTS_NMI_PENDING] = 1;
    events[EVENTS_NMI_MASKED] = 1;
    const flagsBefore = u32(events, EVENTS_FLAGS);
    t.vcpu.setVcpuEvents(events);
    expect(u32(events, EVENTS_FLAGS)).toBe(flagsBefore); // the caller's bytes are left as they were
    const back = t.vcpu.getVcpuEvents();
    expect(back[EVENTS_NMI_PENDING]).toBe(1);
    expect(back[EVENTS_NMI_MASKED]).toBe(1);
    expect(u32(back, EVENTS_FLAGS) & VcpuEventsFlag.SHADOW).toBe(VcpuEventsFlag.SHADOW);
    expect(() => t!.vcpu.setVcpuEvents(new Uint8Array(63))).toThrow(/vCPU events must be 64 bytes, got 63/);
  });

  it("round-trips the debug registers", () => {
    t = longModeVm(`hlt`);
    const regs = t.vcpu.getDebugRegs();
    expect(regs.byteLength).toBe(X86StateSize.DEBUGREGS);
    setU64(regs, 0, 0x1234000n); // DR0
    setU64(regs, 24, 0xfff000n); // DR3
    setU64(regs, DEBUGREGS_DR7, 0x401n | 0x3n); // L0, G0 (bit 10 reads as one)
    t.vcpu.setDebugRegs(regs);
    const back = t.vcpu.getDebugRegs();
    expect([u64(back, 0), u64(back, 24), u64(back, DEBUGREGS_DR7)]).toEqual([0x1234000n, 0xfff000n, 0x403n]);
    expect(() => t!.vcpu.setDebugRegs(new Uint8Array(64))).toThrow(RangeError);
  });

  it("reads the TSC rate and sets it back (and another rate where the CPU scales TSCs)", () => {
    t = longModeVm(`hlt`);
    const khz = t.vcpu.getTscKhz();
    expect(khz).toBeGreaterThan(100_000);
    t.vcpu.setTscKhz(khz);
    expect(t.vcpu.getTscKhz()).toBe(khz);
    if (t.kvm.checkExtension(KvmCap.TSC_CONTROL) > 0) {
      t.vcpu.setTscKhz(1_000_000);
      expect(t.vcpu.getTscKhz()).toBe(1_000_000);
    }
  });

  it("lists the MSRs KVM saves; readMsrs reads IA32_TSC and the SYSENTER MSRs and skips refused ones", () => {
    t = longModeVm(`hlt`);
    const list = t.kvm.msrIndexList();
    expect(list.length).toBeGreaterThan(10);
    expect(list).toEqual(expect.arrayContaining([0x10, 0x174, 0x175, 0x176, 0xc0000082]));
    t.vcpu.setMsrs([{ index: 0x174, value: 0x10 }]);
    const picked = t.vcpu.readMsrs([0x10, 0xdeadbeef, 0x174, 0xdeadbeee]);
    expect(picked.map((m) => m.index)).toEqual([0x10, 0x174]);
    expect(picked[0]!.value).toBeGreaterThan(0n);
    expect(picked[1]!.value).toBe(0x10n);
    expect(() => t!.vcpu.getMsrs([0x10, 0xdeadbeef])).toThrow(/0xdeadbeef/);
    const all = t.vcpu.readMsrs(list);
    expect(all.length).toBeGreaterThan(10);
    expect(all.length).toBeLessThanOrEqual(list.length);
  });
});

describe.skipIf(!kvmOk)("x86 VM state for snapshots (real /dev/kvm)", () => {
  let t: TestVm | undefined;
  afterEach(() => t?.close());

  it("round-trips the PIC's mask and vector base and the IOAPIC's id and redirection entries", () => {
    t = longModeVm(`hlt`, { irqchip: true });
    const pic = t.vm.getIrqchip(Irqchip.PIC_MASTER);
    expect(pic.byteLength).toBe(X86StateSize.IRQCHIP);
    pic[PIC_IMR] = 0xfb;
    pic[PIC_IRQ_BASE] = 0x20;
    t.vm.setIrqchip(Irqchip.PIC_MASTER, pic);
    const picBack = t.vm.getIrqchip(Irqchip.PIC_MASTER);
    expect([picBack[PIC_IMR], picBack[PIC_IRQ_BASE]]).toEqual([0xfb, 0x20]);
    expect(t.vm.getIrqchip(Irqchip.PIC_SLAVE)[PIC_IMR]).not.toBe(0xfb);

    const ioapic = t.vm.getIrqchip(Irqchip.IOAPIC);
    setU32(ioapic, IOAPIC_ID, 5 << 24 >>> 0);
    setU64(ioapic, IOAPIC_REDIRTBL + 5 * 8, (1n << 56n) | (1n << 15n) | 0x35n); // CPU 1, level, vector 0x35
    setU64(ioapic, IOAPIC_REDIRTBL + 9 * 8, 0x10000n | 0x41n); // masked, vector 0x41
    t.vm.setIrqchip(Irqchip.IOAPIC, ioapic);
    const back = t.vm.getIrqchip(Irqchip.IOAPIC);
    expect(u32(back, IOAPIC_ID)).toBe(5 << 24);
    expect(u64(back, IOAPIC_REDIRTBL + 5 * 8)).toBe((1n << 56n) | (1n << 15n) | 0x35n);
    expect(u64(back, IOAPIC_REDIRTBL + 9 * 8)).toBe(0x10041n);
    expect(() => t!.vm.setIrqchip(Irqchip.IOAPIC, new Uint8Array(520))).toThrow(/512 bytes, got 520/);
    expect(() => t!.vm.setIrqchip(3 as 2, ioapic)).toThrow(RangeError);
  });

  it("round-trips the PIT channels' counts and modes", () => {
    t = longModeVm(`hlt`, { irqchip: true });
    t.vm.createPit2();
    const pit = t.vm.getPit2();
    expect(pit.byteLength).toBe(X86StateSize.PIT2);
    setU32(pit, 0, 0x1234);
    pit[PIT_MODE] = 2;
    setU32(pit, 2 * PIT_CHANNEL, 0x5678);
    pit[2 * PIT_CHANNEL + PIT_MODE] = 3;
    t.vm.setPit2(pit);
    const back = t.vm.getPit2();
    expect([u32(back, 0), back[PIT_MODE], u32(back, 2 * PIT_CHANNEL), back[2 * PIT_CHANNEL + PIT_MODE]]).toEqual([0x1234, 2, 0x5678, 3]);
    expect(() => t!.vm.setPit2(new Uint8Array(10))).toThrow(/PIT state must be 112 bytes, got 10/);
  });

  it("sets kvmclock forward and it goes on from there", () => {
    t = longModeVm(`hlt`);
    const before = t.vm.getClock();
    expect(before.clock).toBeGreaterThanOrEqual(0n);
    const target = before.clock + 3_600_000_000_000n; // one hour later
    t.vm.setClock(target);
    const a = t.vm.getClock().clock;
    const b = t.vm.getClock().clock;
    expect(a).toBeGreaterThanOrEqual(target);
    expect(a - target).toBeLessThan(5_000_000_000n);
    expect(b).toBeGreaterThanOrEqual(a);
    expect(() => t!.vm.setClock(-1n)).toThrow(RangeError);
  });

  it("moves a vCPU's and the VM's state into a second VM, as a restore does", () => {
    t = longModeVm(`hlt`, { irqchip: true });
    t.vm.createPit2();
    const src = { vm: t.vm, vcpu: t.vcpu };
    src.vcpu.setXcrs([{ xcr: 0, value: 3 }]);
    src.vcpu.setMsrs([{ index: 0x174, value: 0x33 }]);
    const ioapic = src.vm.getIrqchip(Irqchip.IOAPIC);
    setU64(ioapic, IOAPIC_REDIRTBL + 3 * 8, 0x10052n);
    src.vm.setIrqchip(Irqchip.IOAPIC, ioapic);
    const saved = {
      xsave: src.vcpu.getXsave(),
      xcrs: src.vcpu.getXcrs(),
      msrs: src.vcpu.readMsrs(t.kvm.msrIndexList()),
      events: src.vcpu.getVcpuEvents(),
      debug: src.vcpu.getDebugRegs(),
      ioapic: src.vm.getIrqchip(Irqchip.IOAPIC),
      pit: src.vm.getPit2(),
      clock: src.vm.getClock().clock,
    };

    const dst = longModeVm(`hlt`, { irqchip: true });
    try {
      dst.vm.createPit2();
      dst.vcpu.setXcrs(saved.xcrs);
      dst.vcpu.setXsave(saved.xsave);
      dst.vcpu.setMsrs(saved.msrs);
      dst.vcpu.setVcpuEvents(saved.events);
      dst.vcpu.setDebugRegs(saved.debug);
      dst.vm.setIrqchip(Irqchip.IOAPIC, saved.ioapic);
      dst.vm.setPit2(saved.pit);
      dst.vm.setClock(saved.clock);
      expect(dst.vcpu.getXcrs()).toEqual(saved.xcrs);
      expect(u32(dst.vcpu.getXsave(), XSAVE_MXCSR)).toBe(u32(saved.xsave, XSAVE_MXCSR));
      expect(dst.vcpu.getMsrs([0x174])[0]!.value).toBe(0x33n);
      expect(u64(dst.vm.getIrqchip(Irqchip.IOAPIC), IOAPIC_REDIRTBL + 3 * 8)).toBe(0x10052n);
      expect(dst.vm.getClock().clock).toBeGreaterThanOrEqual(saved.clock);
    } finally {
      dst.close();
    }
  });
});
