import type { Arm64Vcpu, Arm64Vm } from "@vmm/kvm-native";
import type { Arm64LoadPlan } from "../loader/load-plan.js";

// The vCPUs as Linux's arm64 boot protocol (booting.rst) wants them: every one with PSCI 0.2 in KVM, the boot
// vCPU at the Image's entry with x0 = the DTB's address (x1-x3 and PSTATE are KVM_ARM_VCPU_INIT's reset values:
// 0, and EL1h with DAIF masked), the others powered off until the guest starts them with PSCI CPU_ON, which KVM
// handles without the VMM.

/** Creates `count` vCPUs and initialises them: vCPU 0 running, the others powered off. */
export function createVcpus(vm: Pick<Arm64Vm, "createVcpu">, count: number): Arm64Vcpu[] {
  const vcpus: Arm64Vcpu[] = [];
  for (let id = 0; id < count; id++) {
    const vcpu = vm.createVcpu(id);
    vcpu.init({ psci: true, powerOff: id !== 0 });
    vcpus.push(vcpu);
  }
  return vcpus;
}

/** Points the boot vCPU at the kernel: pc = the Image's entry, x0 = the devicetree. */
export function setBootEntry(boot: Pick<Arm64Vcpu, "setCoreReg">, entry: Arm64LoadPlan["entry"]): void {
  boot.setCoreReg("pc", entry.pc);
  boot.setCoreReg("x0", entry.x0);
}
