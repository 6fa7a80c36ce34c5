import { existsSync } from "node:fs";
import type { KvmArch } from "./arch.js";
import { Arm64Vm } from "./arm64/vm.js";
import { KVM_API_VERSION, KvmCap } from "./constants.js";
import { KvmError } from "./errors.js";
import { arm64Native, native, tryLoadNative, x86Native } from "./native.js";
import type { CpuidEntry } from "./types.js";
import { Vm } from "./vm.js";

export interface Arm64VmOptions {
  /**
   * Guest-physical address bits (32 to 52; KVM_VM_TYPE_ARM_IPA_SIZE), for RAM or devices above the default 40-bit
   * (1 TiB) space; the host's limit is checkExtension(KvmCap.ARM_VM_IPA_SIZE). Default: KVM's 40.
   */
  ipaBits?: number;
}

/** Whether /dev/kvm can be used here, and why not. Never throws. */
export function kvmAvailability(path = "/dev/kvm"): { ok: true } | { ok: false; reason: string } {
  const addon = tryLoadNative();
  if (addon instanceof Error) return { ok: false, reason: addon.message };
  if (!existsSync(path)) return { ok: false, reason: `${path} does not exist (no KVM on this machine)` };
  let fd: number;
  try {
    fd = addon.openDevice(path);
  } catch (e) {
    const err = e as KvmError;
    return { ok: false, reason: `cannot open ${path}: ${err.errno ?? err.message}` };
  }
  try {
    const v = addon.getApiVersion(fd);
    if (v !== KVM_API_VERSION) return { ok: false, reason: `${path} has KVM API version ${v}, expected ${KVM_API_VERSION}` };
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: `${path}: ${(e as Error).message}` };
  } finally {
    addon.closeFd(fd);
  }
}

/**
 * The KVM system fd. Its VMs are of the host's architecture (`arch`): createVm() makes an x86_64 Vm,
 * createArm64Vm() an Arm64Vm; the other one throws KvmArchitectureError.
 */
export class Kvm {
  readonly apiVersion: number;
  readonly vcpuMmapSize: number;
  /** The architecture of this host and its addon build. */
  readonly arch: KvmArch;
  private fd: number;

  private constructor(fd: number) {
    this.fd = fd;
    this.arch = native().arch;
    try {
      this.apiVersion = native().getApiVersion(fd);
      if (this.apiVersion !== KVM_API_VERSION) throw new KvmError("KVM_GET_API_VERSION", "EPROTO", 71, `API version ${this.apiVersion}`);
      this.vcpuMmapSize = native().getVcpuMmapSize(fd);
    } catch (e) {
      native().closeFd(fd);
      throw e;
    }
  }

  static open(path = "/dev/kvm"): Kvm {
    return new Kvm(native().openDevice(path));
  }

  /** KVM_CHECK_EXTENSION: 0 when unsupported, else a capability-specific positive value. See KvmCap. */
  checkExtension(cap: number): number {
    return native().checkExtension(this.assertOpen(), cap);
  }

  /** KVM_GET_SUPPORTED_CPUID (x86_64). */
  supportedCpuid(): CpuidEntry[] {
    return x86Native("Kvm.supportedCpuid (CPUID)").getSupportedCpuid(this.assertOpen());
  }

  /**
   * The MSRs KVM saves and restores for a vCPU (KVM_GET_MSR_INDEX_LIST, x86_64): what a snapshot reads with
   * Vcpu.readMsrs.
   */
  msrIndexList(): number[] {
    return x86Native("Kvm.msrIndexList (MSRs)").getMsrIndexList(this.assertOpen());
  }

  /** An x86_64 VM. */
  createVm(): Vm {
    const fd = x86Native("Kvm.createVm (an x86_64 VM)").createVm(this.assertOpen());
    return new Vm(fd, this.vcpuMmapSize);
  }

  /** An arm64 VM. */
  createArm64Vm(options: Arm64VmOptions = {}): Arm64Vm {
    const addon = arm64Native("Kvm.createArm64Vm (an arm64 VM)");
    let type = 0;
    if (options.ipaBits !== undefined) {
      const bits = options.ipaBits;
      if (!Number.isInteger(bits) || bits < 32 || bits > 52) throw new RangeError(`ipaBits must be 32 to 52, got ${bits}`);
      const max = this.checkExtension(KvmCap.ARM_VM_IPA_SIZE);
      if (bits > (max || 40)) throw new RangeError(`this host's KVM gives guests at most ${max || 40} address bits, not ${bits}`);
      type = bits;
    }
    return new Arm64Vm(addon.createVm(this.assertOpen(), type), this.vcpuMmapSize, addon);
  }

  close(): void {
    if (this.fd >= 0) native().closeFd(this.fd);
    this.fd = -1;
  }

  private assertOpen(): number {
    if (this.fd < 0) throw new KvmError("kvm (closed)", "EBADF", 9);
    return this.fd;
  }
}
