import { afterEach, describe, expect, it } from "vitest";
import { Kvm, type Vcpu, type Vm } from "../src/index.js";
import { assemble } from "./support/assemble.js";
import { Recorder, runSync } from "./support/guest.js";
import { kvmOk } from "./support/kvm.js";
import { enterLongMode, writePaging } from "./support/paging.js";

// A Linux kernel address whose low bits a double loses (it was reported as 0xffffffff8305e000).
const KERNEL_RIP = 0xffffffff8305e26cn;
const CODE = 0x1000;

describe.skipIf(!kvmOk)("64-bit registers cross the binding exactly (real /dev/kvm)", () => {
  let kvm: Kvm | undefined;
  let vm: Vm | undefined;
  afterEach(() => {
    vm?.close();
    kvm?.close();
    vm = kvm = undefined;
  });

  function open(): { vm: Vm; vcpu: Vcpu; ram: Uint8Array } {
    kvm = Kvm.open();
    vm = kvm.createVm();
    const ram = vm.allocateMemory(0x200000);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram });
    const vcpu = vm.createVcpu(0);
    vcpu.setCpuid(kvm.supportedCpuid());
    return { vm, vcpu, ram };
  }

  it("round-trips registers above 2^53 through setRegs/getRegs and setSregs/getSregs", () => {
    const { vcpu } = open();
    vcpu.setRegs({ rip: KERNEL_RIP, rsp: 0xffffc90000013f58n, rax: 0xfedcba9876543211n, r15: 2n ** 64n - 1n, rbx: 5 });
    const r = vcpu.getRegs();
    expect(r.rip).toBe(KERNEL_RIP);
    expect(r.rsp).toBe(0xffffc90000013f58n);
    expect(r.rax).toBe(0xfedcba9876543211n);
    expect(r.r15).toBe(2n ** 64n - 1n);
    expect(r.rbx).toBe(5n);
    expect(typeof r.rflags).toBe("number");

    const s = vcpu.getSregs();
    vcpu.setSregs({ cr2: 0xffffffff9abcdef7n, gs: { ...s.gs, base: 0xffff88807fc00123n }, idt: { base: 0xfffffe0000000123n, limit: 0xfff } });
    const s2 = vcpu.getSregs();
    expect(s2.cr2).toBe(0xffffffff9abcdef7n);
    expect(s2.gs.base).toBe(0xffff88807fc00123n);
    expect(s2.idt).toEqual({ base: 0xfffffe0000000123n, limit: 0xfff });
  });

  it("reports the exact RIP of a guest that fails at a kernel-style address", () => {
    const { vcpu, ram } = open();
    // 0xffffffff83000000 (2 MiB page) -> guest-physical 0, so KERNEL_RIP runs the int3 placed at 0x5e26c.
    writePaging(ram, [{ virt: KERNEL_RIP & ~0x1fffffn, phys: 0n }]);
    ram.set(assemble(`.code64\nmovabs $0x${KERNEL_RIP.toString(16)}, %rax\njmp *%rax`, CODE), CODE);
    ram[Number(KERNEL_RIP & 0x1fffffn)] = 0xcc; // int3: the emulator cannot run it
    enterLongMode(vcpu, CODE);
    const res = runSync(vcpu, new Recorder(vcpu));
    expect(res.reason).toBe("internal-error");
    if (res.reason !== "internal-error") return;
    expect(res.rip).toBe(KERNEL_RIP);
    expect(vcpu.getRegs().rip).toBe(KERNEL_RIP);
  });

  it("keeps CR2 of a page fault at a high address exact", () => {
    const { vcpu, ram } = open();
    writePaging(ram);
    // No IDT: the #PF escalates to a triple fault; CR2 still holds the faulting address.
    ram.set(assemble(`.code64\nmovabs $0xffffffff9abcdef7, %rbx\nmov (%rbx), %al\nhlt`, CODE), CODE);
    enterLongMode(vcpu, CODE);
    const res = runSync(vcpu, new Recorder(vcpu));
    expect(res.reason).toBe("shutdown");
    expect(vcpu.getSregs().cr2).toBe(0xffffffff9abcdef7n);
  });
});
