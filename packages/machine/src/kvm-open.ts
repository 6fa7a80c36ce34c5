import { ConfigurationError } from "@vmm/core";
import { Kvm, KvmCap, kvmAvailability } from "@vmm/kvm-native";

/** Opens /dev/kvm with a clear error when KVM cannot be used, and reports how many vCPUs a VM may have. */
export function openKvm(path?: string): { kvm: Kvm; maxVcpus: number } {
  const available = kvmAvailability(path);
  if (!available.ok) throw new ConfigurationError(`KVM is not usable: ${available.reason}`);
  const kvm = Kvm.open(path);
  const maxVcpus = kvm.checkExtension(KvmCap.NR_VCPUS) || kvm.checkExtension(KvmCap.MAX_VCPUS) || 1;
  return { kvm, maxVcpus };
}
