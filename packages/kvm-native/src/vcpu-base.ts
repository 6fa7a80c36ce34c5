// What a vCPU is on every architecture: the run loop (KVM_RUN on the calling thread, exits dispatched
// synchronously), stop requests and kicks, MP state and closing. Vcpu (x86_64) and Arm64Vcpu add their registers.
import { KvmError } from "./errors.js";
import type { NativeVcpuCommon } from "./native.js";
import { KvmStats } from "./stats.js";
import type { RunOptions, ThreadRunOptions } from "./types.js";

/** runOnThread's default spin (µs): on this project's host it takes an exit's hand-off from ~60 to ~11.5 µs (README). */
const DEFAULT_SPIN_US = 20;

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
  private statsReader: KvmStats | undefined;

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

  /**
   * Runs the guest on a native thread of this vCPU's own, so that vCPUs run in parallel, until it is kicked
   * ("yield") or an exit needs the machine (the same results as run()). Exits the kernel or the native fast paths
   * answer stay on that thread; port-I/O and MMIO exits that need `dispatch` are handed to the JS thread (a
   * thread-safe call; the vCPU thread waits for the answer) and called there with `dispatch` as `this`. A callback
   * that throws rejects the promise with that error. One run or thread per vCPU at a time; close() stops the
   * thread (the promise then settles with "yield").
   */
  runOnThread(dispatch: Dispatch, options: ThreadRunOptions = {}): Promise<Result> {
    const spinUs = options.spinUs ?? DEFAULT_SPIN_US;
    if (!Number.isFinite(spinUs) || spinUs < 0) throw new RangeError(`spinUs must be a non-negative number of µs, got ${spinUs}`);
    return this.h().startThread(dispatch, Math.round(spinUs * 1000)) as Promise<Result>;
  }

  /**
   * Makes the vCPU's thread leave KVM_RUN and waits until it has ended, answering on this thread an exit it waits
   * on, so that the vCPU's state can be read at once. False when called from this vCPU's own exit callback (its
   * thread then ends right after that exit); true when no thread runs.
   */
  stopThread(): boolean {
    return this.h().stopThread();
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

  /**
   * This vCPU's binary statistics (KVM_GET_STATS_FD), opened on first use and closed with the vCPU. Their reads
   * take no vCPU lock: `stats().value("blocking")` is 1n while the vCPU waits in the kernel (HLT, wait-for-SIPI),
   * also when it runs on a thread of its own. Throws a KvmError on kernels without binary statistics (before 5.14).
   */
  stats(): KvmStats {
    this.statsReader ??= new KvmStats(this.h().statsFd());
    return this.statsReader;
  }

  close(): void {
    this.statsReader?.close();
    this.statsReader = undefined;
    this.handle?.close();
    this.handle = undefined;
  }

  /** @internal The native handle; throws once the vCPU is closed. */
  protected h(): Handle {
    if (!this.handle) throw new KvmError("vcpu (closed)", "EBADF", 9);
    return this.handle;
  }
}
