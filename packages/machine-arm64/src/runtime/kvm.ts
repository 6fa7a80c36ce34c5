import { ConfigurationError } from "@vmm/core";
import { Kvm, KvmCap, kvmAvailability, type Arm64Vm, type Arm64VmOptions } from "@vmm/kvm-native";

// The part of /dev/kvm the arm64 machine uses. The machine opens it itself on an arm64 host; tests hand in a Kvm
// whose VMs are kvm-native's real Arm64Vm over an addon that records the native calls.

export interface Arm64Kvm {
  createArm64Vm(options?: Arm64VmOptions): Arm64Vm;
  checkExtension(cap: number): number;
  close(): void;
}

/** Opens /dev/kvm, or says in one line why KVM cannot be used here. */
export function openArm64Kvm(): Arm64Kvm {
  const available = kvmAvailability();
  if (!available.ok) throw new ConfigurationError(`KVM is not usable: ${available.reason}`);
  return Kvm.open();
}

/** How many vCPUs this host's KVM gives a VM (KVM_CAP_NR_VCPUS, the recommended count, else the maximum). */
export function maxVcpus(kvm: Arm64Kvm): number {
  return kvm.checkExtension(KvmCap.NR_VCPUS) || kvm.checkExtension(KvmCap.MAX_VCPUS) || 1;
}
