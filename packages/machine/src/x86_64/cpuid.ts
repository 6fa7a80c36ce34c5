import type { CpuidEntry } from "@vmm/kvm-native";

const LEAF_FEATURES = 1;
const LEAF_TOPOLOGY = 0xb;
const LEAF_TOPOLOGY_V2 = 0x1f;
const ECX_HYPERVISOR = 1 << 31;
const EDX_HTT = 1 << 28;

/**
 * The CPUID a vCPU sees: KVM's supported leaves with this CPU's APIC ID in leaf 1 (EBX[31:24]) and the x2APIC
 * topology leaves (EDX), the logical processor count, and the hypervisor bit.
 */
export function patchCpuid(supported: readonly CpuidEntry[], apicId: number, cpus: number): CpuidEntry[] {
  return supported.map((e) => {
    const out = { ...e };
    if (e.function === LEAF_FEATURES) {
      out.ebx = ((e.ebx & 0x0000ffff) | ((cpus & 0xff) << 16) | ((apicId & 0xff) << 24)) >>> 0;
      out.ecx = (e.ecx | ECX_HYPERVISOR) >>> 0;
      out.edx = (cpus > 1 ? e.edx | EDX_HTT : e.edx & ~EDX_HTT) >>> 0;
    } else if (e.function === LEAF_TOPOLOGY || e.function === LEAF_TOPOLOGY_V2) {
      out.edx = apicId >>> 0;
    }
    return out;
  });
}
