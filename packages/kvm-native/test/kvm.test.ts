import { afterEach, describe, expect, it } from "vitest";
import { Kvm, KvmCap, KvmError, kvmAvailability, MpState, type Vm } from "../src/index.js";
import { kvmOk } from "./support/kvm.js";

describe("kvmAvailability", () => {
  it("explains why a missing device cannot be used, without throwing", () => {
    const a = kvmAvailability("/nonexistent/kvm");
    expect(a.ok).toBe(false);
    if (!a.ok) expect(a.reason).toMatch(/does not exist|not built/);
  });
});

describe.skipIf(!kvmOk)("Kvm, Vm and Vcpu state (real /dev/kvm)", () => {
  let kvm: Kvm;
  let vm: Vm;
  afterEach(() => {
    vm?.close();
    kvm?.close();
  });

  function open(): void {
    kvm = Kvm.open();
    vm = kvm.createVm();
  }

  it("reports the API version, capabilities and supported CPUID", () => {
    open();
    expect(kvm.apiVersion).toBe(12);
    expect(kvm.vcpuMmapSize).toBeGreaterThanOrEqual(4096);
    for (const cap of [KvmCap.IRQCHIP, KvmCap.IOEVENTFD, KvmCap.IRQFD, KvmCap.READONLY_MEM, KvmCap.IMMEDIATE_EXIT]) {
      expect(kvm.checkExtension(cap)).toBeGreaterThan(0);
    }
    const cpuid = kvm.supportedCpuid();
    const leaf0 = cpuid.find((e) => e.function === 0);
    expect(leaf0?.eax).toBeGreaterThan(0);
    expect(cpuid.length).toBeGreaterThan(5);
  });

  it("maps failing system calls to KvmError with errno names", () => {
    open();
    const err = (f: () => unknown): KvmError => {
      try {
        f();
      } catch (e) {
        return e as KvmError;
      }
      throw new Error("did not throw");
    };
    const e1 = err(() => vm.createVcpu(9999));
    expect(e1).toBeInstanceOf(KvmError);
    expect(e1).toMatchObject({ errno: "EINVAL", syscall: "KVM_CREATE_VCPU" });
    expect(e1.message).toMatch(/KVM_CREATE_VCPU.*EINVAL/);
    vm.createVcpu(0);
    expect(err(() => vm.createVcpu(0))).toMatchObject({ errno: "EEXIST", syscall: "KVM_CREATE_VCPU" });
    const a = vm.allocateMemory(0x2000);
    const b = vm.allocateMemory(0x1000);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: a });
    expect(err(() => vm.setMemoryRegion({ slot: 1, guestPhysAddr: 0x1000, memory: b }))).toMatchObject({
      errno: "EEXIST",
      syscall: "KVM_SET_USER_MEMORY_REGION",
    });
    expect(err(() => Kvm.open("/nonexistent/kvm"))).toMatchObject({ errno: "ENOENT", syscall: "open" });
    expect(err(() => vm.removeMemoryRegion(7))).toMatchObject({ errno: "ENOENT" });
    vm.close();
    expect(err(() => vm.createVcpu(1))).toMatchObject({ errno: "EBADF" });
  });

  it("sets up the in-kernel irqchip, PIT, TSS and identity map", () => {
    open();
    vm.setTssAddr(0xfffbd000);
    vm.setIdentityMapAddr(0xfffbc000);
    vm.createIrqchip();
    vm.createPit2();
    expect(() => vm.createIrqchip()).toThrow(KvmError);
    const vcpu = vm.createVcpu(0);
    expect(vcpu.getMpState()).toBe(MpState.RUNNABLE);
    const lapic = vcpu.getLapic();
    expect(lapic).toHaveLength(1024);
    const id = new DataView(lapic.buffer).getUint32(0x20, true);
    expect(id >>> 24).toBe(0);
    lapic.set([0x3f], 0x80); // TPR
    vcpu.setLapic(lapic);
    expect(vcpu.getLapic()[0x80]).toBe(0x3f);
    const ap = vm.createVcpu(1);
    expect(ap.getMpState()).toBe(MpState.UNINITIALIZED);
    ap.setMpState(MpState.RUNNABLE);
    expect(ap.getMpState()).toBe(MpState.RUNNABLE);
    expect(() => vcpu.setLapic(new Uint8Array(10))).toThrow(RangeError);
  });

  it("round-trips registers, special registers, FPU state, MSRs and CPUID", () => {
    open();
    const vcpu = vm.createVcpu(0);
    vcpu.setCpuid(kvm.supportedCpuid());
    vcpu.setRegs({ rax: 0x123456789abc, r15: 7, rip: 0xfff0, rflags: 0x202 });
    const regs = vcpu.getRegs();
    expect(regs).toMatchObject({ rax: 0x123456789abcn, r15: 7n, rip: 0xfff0n, rflags: 0x202, rbx: 0n });
    vcpu.setRegs({ rbx: 2n ** 40n });
    expect(vcpu.getRegs()).toMatchObject({ rax: 0x123456789abcn, rbx: 2n ** 40n });

    const s = vcpu.getSregs();
    expect(s.cs).toMatchObject({ selector: 0xf000, base: 0xffff0000n, present: 1 });
    vcpu.setSregs({ cs: { ...s.cs, selector: 0x10, base: 0x100 }, gdt: { base: 0x500, limit: 0x17 }, cr4: 0x20 });
    const s2 = vcpu.getSregs();
    expect(s2.cs).toMatchObject({ selector: 0x10, base: 0x100n });
    expect(s2.gdt).toEqual({ base: 0x500n, limit: 0x17 });
    expect(s2.cr4).toBe(0x20n);
    expect(s2.ds).toEqual(s.ds);
    expect(s2.interruptBitmap).toEqual([0n, 0n, 0n, 0n]);

    const fpu = vcpu.getFpu();
    expect(fpu.xmm).toHaveLength(256);
    const xmm = new Uint8Array(256).fill(0xa5);
    // (this host's nested KVM does not round-trip mxcsr through KVM_SET_FPU, so it is not checked)
    vcpu.setFpu({ fcw: 0x27f, xmm });
    const fpu2 = vcpu.getFpu();
    expect(fpu2.fcw).toBe(0x27f);
    expect(fpu2.xmm).toEqual(xmm);

    const PAT = 0x277;
    const SYSENTER_CS = 0x174;
    vcpu.setMsrs([{ index: PAT, value: 0x0007040600070406n }, { index: SYSENTER_CS, value: 0x10 }]);
    expect(vcpu.getMsrs([PAT, SYSENTER_CS])).toEqual([
      { index: PAT, value: 0x0007040600070406n },
      { index: SYSENTER_CS, value: 0x10n },
    ]);
    expect(() => vcpu.getMsrs([0xdeadbeef])).toThrow(/MSR 0xdeadbeef/);
    expect(() => vcpu.setRegs({ rax: -1 })).toThrow(RangeError);
    expect(() => vcpu.setRegs({ rax: 1.5 })).toThrow(RangeError);
  });
});
