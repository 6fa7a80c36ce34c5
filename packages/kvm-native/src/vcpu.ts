// The x86_64 vCPU: general, special and FPU registers, MSRs, CPUID, the LAPIC page and the PM timer answered in the
// run loop; port-I/O and MMIO exits go to a VcpuExitDispatch.
import { KvmError } from "./errors.js";
import type { NativeVcpu } from "./native.js";
import type { CpuidEntry, VcpuExitDispatch, Fpu, FpuInput, MsrEntry, Regs, RegsInput, VcpuRunResult, Sregs, SregsInput } from "./types.js";
import { VcpuBase } from "./vcpu-base.js";

export type { SregsInput } from "./types.js";

/** An x86_64 virtual CPU (Vm.createVcpu()). Setters take partial objects: fields left out keep their current values. */
export class Vcpu extends VcpuBase<NativeVcpu, VcpuExitDispatch, VcpuRunResult> {
  getRegs(): Regs {
    return this.h().getRegs();
  }

  setRegs(regs: RegsInput): void {
    this.h().setRegs(regs);
  }

  getSregs(): Sregs {
    return this.h().getSregs();
  }

  setSregs(sregs: SregsInput): void {
    this.h().setSregs(sregs);
  }

  getFpu(): Fpu {
    return this.h().getFpu();
  }

  setFpu(fpu: FpuInput): void {
    this.h().setFpu(fpu);
  }

  /** Reads MSRs; throws KvmError(EINVAL) naming the first MSR KVM refused. */
  getMsrs(indices: number[]): MsrEntry[] {
    const out = this.h().getMsrs(indices);
    if (out.length < indices.length) {
      throw new KvmError("KVM_GET_MSRS", "EINVAL", 22, `MSR 0x${indices[out.length]!.toString(16)} cannot be read`);
    }
    return out;
  }

  /** Writes MSRs; throws KvmError(EINVAL) naming the first MSR KVM refused. */
  setMsrs(entries: Array<{ index: number; value: number | bigint }>): void {
    const n = this.h().setMsrs(entries);
    if (n < entries.length) {
      throw new KvmError("KVM_SET_MSRS", "EINVAL", 22, `MSR 0x${entries[n]!.index.toString(16)} cannot be written`);
    }
  }

  /** KVM_SET_CPUID2 (before the first run). */
  setCpuid(entries: CpuidEntry[]): void {
    this.h().setCpuid(entries);
  }

  /** The 1024-byte LAPIC register page (KVM_GET_LAPIC). */
  getLapic(): Uint8Array {
    return this.h().getLapic();
  }

  setLapic(state: Uint8Array): void {
    this.h().setLapic(state);
  }

  /**
   * Answers reads of the 4 ports from `port` in the run loop, without a dispatch call: the 24-bit ACPI PM timer
   * (3.579545 MHz) counted from `startNs` on node's monotonic clock (`process.hrtime.bigint()`), so a JS PmTimer
   * started at the same instant reads the same count. Linux calibrates the TSC against back-to-back PM timer reads
   * whose total time must stay under a bound; a JS round trip per read made that fail on emulating hosts. Writes
   * still reach `dispatch.pio`. Port 0 turns it off.
   */
  setPmTimer(port: number, startNs: bigint): void {
    if (!Number.isInteger(port) || port < 0 || port > 0xfffc) throw new RangeError(`PM timer port must be 0 to 0xfffc, got ${port}`);
    if (typeof startNs !== "bigint") throw new TypeError("startNs must be a bigint (process.hrtime.bigint())");
    this.h().setPmTimer(port, startNs);
  }
}
