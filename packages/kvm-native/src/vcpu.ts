// The x86_64 vCPU: general, special and FPU registers, MSRs, CPUID, the LAPIC page, the state a snapshot saves
// (XSAVE, XCRs, vCPU events, debug registers, TSC frequency) and the PM timer answered in the run loop; port-I/O
// and MMIO exits go to a VcpuExitDispatch.
import { VcpuEventsFlag, X86StateSize } from "./constants.js";
import { KvmError } from "./errors.js";
import type { NativeVcpu } from "./native.js";
import type { CpuidEntry, VcpuExitDispatch, Fpu, FpuInput, MsrEntry, Regs, RegsInput, VcpuRunResult, Sregs, SregsInput } from "./types.js";
import { VcpuBase } from "./vcpu-base.js";

export type { SregsInput } from "./types.js";

/** KVM_GET_MSRS takes at most this many per call here (the addon's limit). */
const MSR_BATCH = 1024;
/** Byte offset of struct kvm_vcpu_events' flags (asserted in native/x86-vcpu.cc). */
const VCPU_EVENTS_FLAGS = 20;

/** Throws a RangeError unless `state` is a Uint8Array of exactly `size` bytes. */
export function assertStateBytes(what: string, state: Uint8Array, size: number): void {
  if (!(state instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  if (state.byteLength !== size) throw new RangeError(`${what} must be ${size} bytes, got ${state.byteLength}`);
}

/** An x86_64 virtual CPU (Vm.createVcpu()). Setters take partial objects: fields left out keep their current values. */
export class Vcpu extends VcpuBase<NativeVcpu, VcpuExitDispatch, VcpuRunResult> {
  /**
   * @internal Use Vm.createVcpu(). `xsaveBytes` tells the size of the XSAVE area (the VM's
   * KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2)).
   */
  constructor(
    handle: NativeVcpu,
    id: number,
    owner?: object,
    private readonly xsaveBytes: () => number = () => X86StateSize.XSAVE,
  ) {
    super(handle, id, owner);
  }

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

  /**
   * Every MSR of `indices` KVM lets the VMM read, in order; the ones it refuses are left out (KVM_GET_MSRS stops
   * at the first refused MSR: the read goes on after it). For a snapshot: `readMsrs(kvm.msrIndexList())`, and
   * setMsrs with the result on restore.
   */
  readMsrs(indices: readonly number[]): MsrEntry[] {
    const out: MsrEntry[] = [];
    for (let at = 0; at < indices.length; ) {
      const batch = indices.slice(at, at + MSR_BATCH);
      const got = this.h().getMsrs(batch);
      out.push(...got);
      at += got.length < batch.length ? got.length + 1 : batch.length;
    }
    return out;
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

  /** The byte size of this vCPU's XSAVE area: 4096, or more where KVM_CAP_XSAVE2 says so (AMX tiles). */
  xsaveSize(): number {
    return this.xsaveBytes();
  }

  /** The XSAVE area (FPU, SSE, AVX... state; KVM_GET_XSAVE, or KVM_GET_XSAVE2 when xsaveSize() > 4096). */
  getXsave(): Uint8Array {
    return this.h().getXsave(this.xsaveSize());
  }

  /** KVM_SET_XSAVE of an area getXsave() returned (exactly xsaveSize() bytes). */
  setXsave(state: Uint8Array): void {
    assertStateBytes("XSAVE state", state, this.xsaveSize());
    this.h().setXsave(state);
  }

  /** The extended control registers (KVM_GET_XCRS): XCR0 is `{ xcr: 0 }`. */
  getXcrs(): Array<{ xcr: number; value: bigint }> {
    return this.h().getXcrs();
  }

  setXcrs(xcrs: ReadonlyArray<{ xcr: number; value: number | bigint }>): void {
    if (!Array.isArray(xcrs) || xcrs.length > 16) throw new RangeError("setXcrs takes an array of at most 16 {xcr, value}");
    this.h().setXcrs(xcrs as Array<{ xcr: number; value: number | bigint }>);
  }

  /**
   * Pending and injected exceptions, interrupts and NMIs, the interrupt shadow, SIPI vector, SMM state and
   * triple fault (struct kvm_vcpu_events, X86StateSize.VCPU_EVENTS opaque bytes).
   */
  getVcpuEvents(): Uint8Array {
    return this.h().getVcpuEvents();
  }

  /**
   * KVM_SET_VCPU_EVENTS of bytes getVcpuEvents() returned. The flags word (byte 20) is set so that KVM takes all of
   * it: VcpuEventsFlag.NMI_PENDING, SIPI_VECTOR, SHADOW and SMM are added; PAYLOAD and TRIPLE_FAULT are kept as
   * read (KVM reports them only where the VM enabled KVM_CAP_EXCEPTION_PAYLOAD / KVM_CAP_X86_TRIPLE_FAULT_EVENT,
   * and refuses them elsewhere). `state` itself is not modified.
   */
  setVcpuEvents(state: Uint8Array): void {
    assertStateBytes("vCPU events", state, X86StateSize.VCPU_EVENTS);
    const events = Uint8Array.from(state);
    const view = new DataView(events.buffer);
    const all = VcpuEventsFlag.NMI_PENDING | VcpuEventsFlag.SIPI_VECTOR | VcpuEventsFlag.SHADOW | VcpuEventsFlag.SMM;
    view.setUint32(VCPU_EVENTS_FLAGS, view.getUint32(VCPU_EVENTS_FLAGS, true) | all, true);
    this.h().setVcpuEvents(events);
  }

  /** DR0-DR3, DR6, DR7 (struct kvm_debugregs, X86StateSize.DEBUGREGS opaque bytes). */
  getDebugRegs(): Uint8Array {
    return this.h().getDebugRegs();
  }

  setDebugRegs(state: Uint8Array): void {
    assertStateBytes("debug registers", state, X86StateSize.DEBUGREGS);
    this.h().setDebugRegs(state);
  }

  /** The guest's TSC frequency in kHz (KVM_GET_TSC_KHZ). */
  getTscKhz(): number {
    return this.h().getTscKhz();
  }

  /**
   * KVM_SET_TSC_KHZ: a restored guest keeps the TSC rate it calibrated (KVM scales it where the host's differs and
   * the CPU can, KvmCap.TSC_CONTROL; otherwise KVM refuses rates other than the host's).
   */
  setTscKhz(khz: number): void {
    if (!Number.isInteger(khz) || khz <= 0 || khz > 0xffffffff) throw new RangeError(`TSC frequency must be a positive integer of kHz, got ${khz}`);
    this.h().setTscKhz(khz);
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
