// Whether a vCPU waits in the kernel (HLT, wait-for-SIPI), read from KVM's "blocking" statistic: the read takes no
// vCPU lock, so it works while the vCPU sits in KVM_RUN on a thread of its own.

/** What it needs of a vCPU: @vmm/kvm-native's `VcpuBase.stats()`. */
export interface StatsSource {
  stats(): { value(name: string): bigint | undefined };
}

/** A reader of `vcpu`'s blocking state, or undefined where the kernel keeps no such statistic (older kernels). */
export function waitingInKernel(vcpu: StatsSource): (() => boolean) | undefined {
  try {
    const stats = vcpu.stats();
    if (stats.value("blocking") === undefined) return undefined;
    return () => stats.value("blocking") === 1n;
  } catch {
    return undefined;
  }
}
