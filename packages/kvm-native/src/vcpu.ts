import { KvmError } from "./errors.js";
import type { NativeVcpu } from "./native.js";
import type { CpuidEntry, VcpuExitDispatch, Fpu, FpuInput, MsrEntry, Regs, RegsInput, RunOptions, VcpuRunResult, Sregs, SregsInput } from "./types.js";

export type { SregsInput } from "./types.js";

function sliceMs(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined || v === Infinity) return dflt;
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a non-negative number of ms, got ${v}`);
  return Math.ceil(v);
}

/** A virtual CPU. Setters take partial objects: fields left out keep their current values. */
export class Vcpu {
  readonly id: number;
  private handle: NativeVcpu | undefined;

  /**
   * @internal Use Vm.createVcpu(). `owner` (the Vm) is only held so that the VM and the guest memory of its
   * memslots stay alive, and mapped, as long as a vCPU that can touch them is reachable.
   */
  constructor(handle: NativeVcpu, id: number, private readonly owner?: object) {
    this.handle = handle;
    this.id = id;
  }

  /**
   * Runs the guest on the calling (JS) thread. Port-I/O and MMIO exits call `dispatch` synchronously;
   * returns when an exit needs the machine, a callback called requestStop(), the event loop gets new work (an fd
   * it watches becomes readable, its next timer is due) or the slice is over ("yield": re-enter with setImmediate).
   * A callback that throws makes run() throw that error.
   */
  run(dispatch: VcpuExitDispatch, options: RunOptions = {}): VcpuRunResult {
    return this.h().run(
      dispatch,
      sliceMs("maxSliceMs", options.maxSliceMs, -1),
      sliceMs("immediateSliceMs", options.immediateSliceMs, 4),
    );
  }

  /** From a dispatch callback: return "yield" after the current exit. */
  requestStop(): void {
    this.h().requestStop();
  }

  /** Makes an active run return "yield" as soon as possible; when none is active, the next run returns at once. */
  kick(): void {
    this.h().kick();
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

  /** KVM_SET_CPUID2 (before the first run). */
  setCpuid(entries: CpuidEntry[]): void {
    this.h().setCpuid(entries);
  }

  getMpState(): number {
    return this.h().getMpState();
  }

  setMpState(state: number): void {
    this.h().setMpState(state);
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

  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }

  private h(): NativeVcpu {
    if (!this.handle) throw new KvmError("vcpu (closed)", "EBADF", 9);
    return this.handle;
  }
}
