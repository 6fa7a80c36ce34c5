// What a vCPU is on every architecture: the run loop (KVM_RUN on the calling thread, exits dispatched
// synchronously), stop requests and kicks, MP state and closing. Vcpu (x86_64) and Arm64Vcpu add their registers.
import { KvmError } from "./errors.js";
import type { NativeVcpuCommon } from "./native.js";
import type { RunOptions } from "./types.js";

function sliceMs(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined || v === Infinity) return dflt;
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must be a non-negative number of ms, got ${v}`);
  return Math.ceil(v);
}

/**
 * A virtual CPU, the part every architecture shares. `Dispatch` is the architecture's exit handlers, `Result`
 * what run() returns there.
 */
export class VcpuBase<Handle extends NativeVcpuCommon, Dispatch extends object, Result> {
  readonly id: number;
  private handle: Handle | undefined;

  /**
   * @internal Use the VM's createVcpu(). `owner` (the VM) is only held so that the VM and the guest memory of its
   * memslots stay alive, and mapped, as long as a vCPU that can touch them is reachable.
   */
  constructor(handle: Handle, id: number, private readonly owner?: object) {
    this.handle = handle;
    this.id = id;
  }

  /**
   * Runs the guest on the calling (JS) thread. MMIO exits (and port-I/O exits on x86) call `dispatch`
   * synchronously; returns when an exit needs the machine, a callback called requestStop(), the event loop gets
   * new work (an fd it watches becomes readable, its next timer is due) or the slice is over ("yield": re-enter
   * with setImmediate). A callback that throws makes run() throw that error.
   */
  run(dispatch: Dispatch, options: RunOptions = {}): Result {
    return this.h().run(
      dispatch,
      sliceMs("maxSliceMs", options.maxSliceMs, -1),
      sliceMs("immediateSliceMs", options.immediateSliceMs, 4),
    ) as Result;
  }

  /** From a dispatch callback: return "yield" after the current exit. */
  requestStop(): void {
    this.h().requestStop();
  }

  /** Makes an active run return "yield" as soon as possible; when none is active, the next run returns at once. */
  kick(): void {
    this.h().kick();
  }

  /** KVM_GET_MP_STATE (MpState.* on x86, Arm64MpState.* on arm64). */
  getMpState(): number {
    return this.h().getMpState();
  }

  setMpState(state: number): void {
    this.h().setMpState(state);
  }

  close(): void {
    this.handle?.close();
    this.handle = undefined;
  }

  /** @internal The native handle; throws once the vCPU is closed. */
  protected h(): Handle {
    if (!this.handle) throw new KvmError("vcpu (closed)", "EBADF", 9);
    return this.handle;
  }
}
