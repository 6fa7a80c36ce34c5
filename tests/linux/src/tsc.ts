// The guest's TSC frequency as KVM runs it (KVM_GET_TSC_KHZ on a scratch vCPU), for `tsc_early_khz=`.
import { closeSync, openSync } from "node:fs";
import { ioctlValue } from "@vmm/host-io";

// linux/kvm.h: _IO(KVMIO = 0xAE, n).
const KVM_CREATE_VM = 0xae01;
const KVM_CREATE_VCPU = 0xae41;
const KVM_GET_TSC_KHZ = 0xaea3;

let cached: number | undefined;

/**
 * Linux 6.1 calibrates the TSC against back-to-back PM timer reads whose total must stay under 50,000 TSC cycles
 * (about 20 us here): three port exits on this emulating host take about that long, so calibration fails on many
 * boots. The test guest is told the frequency KVM runs its TSC at instead; undefined where KVM cannot say.
 */
export function guestTscKhz(): number | undefined {
  if (cached !== undefined) return cached;
  const fds: number[] = [];
  try {
    fds.push(openSync("/dev/kvm", "r+"));
    fds.push(ioctlValue(fds[0]!, KVM_CREATE_VM, 0));
    fds.push(ioctlValue(fds[1]!, KVM_CREATE_VCPU, 0));
    const khz = ioctlValue(fds[2]!, KVM_GET_TSC_KHZ, 0);
    cached = khz > 0 ? khz : undefined;
  } catch {
    cached = undefined;
  } finally {
    for (const fd of fds.reverse()) closeSync(fd);
  }
  return cached;
}
