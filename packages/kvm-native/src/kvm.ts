import { existsSync } from "node:fs";
import { KVM_API_VERSION } from "./constants.js";
import { KvmError } from "./errors.js";
import { native, tryLoadNative } from "./native.js";
import type { CpuidEntry } from "./types.js";
import { Vm } from "./vm.js";

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

/** The KVM system fd. */
export class Kvm {
  readonly apiVersion: number;
  readonly vcpuMmapSize: number;
  private fd: number;

  private constructor(fd: number) {
    this.fd = fd;
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

  /** KVM_GET_SUPPORTED_CPUID. */
  supportedCpuid(): CpuidEntry[] {
    return native().getSupportedCpuid(this.assertOpen());
  }

  createVm(): Vm {
    return new Vm(native().createVm(this.assertOpen()), this.vcpuMmapSize);
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
