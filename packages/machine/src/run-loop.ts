import { allOnes, type AddressSpace, type Logger, type SmallAccessSize } from "@vmm/core";
import { LoopControl } from "./loop-control.js";

/** Why a run ended. */
export type StopReason = "debug-exit" | "reset" | "shutdown" | "poweroff" | "halt" | "error" | "stopped";

/** What `Machine.run()` resolves with: `status` is the exit status for the process (0 = success). */
export interface MachineResult {
  readonly status: number;
  readonly reason: StopReason;
  readonly message?: string;
}

/** The exit callbacks the binding calls synchronously from KVM_RUN. */
export interface LoopExitDispatch {
  pio(port: number, size: number, isWrite: boolean, value: number): number;
  mmio(address: number, size: number, isWrite: boolean, lo: number, hi: number): number | bigint;
}

/** `rip` and `code` are bigints from @vmm/kvm-native (exact 64-bit values); numbers are accepted too. */
export type LoopRunResult =
  | { reason: "yield" }
  | { reason: "hlt" }
  | { reason: "shutdown"; rip?: number | bigint }
  | { reason: "internal-error"; suberror: number; rip?: number | bigint; bytes?: Uint8Array }
  | { reason: "fail-entry"; code: number | bigint; rip?: number | bigint }
  | { reason: "system-event"; type: number }
  | { reason: "unknown"; exitReason: number; rip?: number | bigint }
  | { reason: string };

/** The vCPU operations the loop needs. */
export interface LoopVcpu {
  readonly id: number;
  run(dispatch: LoopExitDispatch, options: { maxSliceMs?: number }): LoopRunResult;
  requestStop(): void;
  /** True when the vCPU is halted with interrupts disabled: nothing but an NMI or INIT can wake it. */
  parked?(): boolean;
  /** vcpuThreads: KVM_RUN on the vCPU's own thread until kicked or an exit needs the machine. */
  runOnThread?(dispatch: LoopExitDispatch): Promise<LoopRunResult>;
  /** vcpuThreads: makes the thread leave KVM_RUN and joins it; false from the vCPU's own exit. */
  stopThread?(): boolean;
  /** Makes the vCPU leave KVM_RUN now, wherever it runs. */
  kick?(): void;
  /**
   * vcpuThreads: true while the vCPU waits in the kernel (HLT, wait-for-SIPI), read without stopping its thread.
   * Without it on every vCPU, a threaded run cannot tell that every vCPU halted with interrupts disabled.
   */
  blocked?(): boolean;
}

export interface RunLoopOptions {
  readonly pio: AddressSpace;
  readonly mmio: AddressSpace;
  readonly logger: Logger;
  /** Longest time one vCPU runs before the next gets a turn (ms). */
  readonly maxSliceMs?: number;
  /** Trace every exit through logger.debug. */
  readonly trace?: boolean;
  /**
   * Run each vCPU's KVM_RUN on a native thread of its own (`LoopVcpu.runOnThread`), so vCPUs run in parallel;
   * exits that need a device come to the JS thread. Default: every vCPU takes turns on the JS thread.
   */
  readonly vcpuThreads?: boolean;
}

/**
 * vcpuThreads: how often the halt watch reads the vCPUs' blocking state (ms). When all wait in the kernel it stops
 * their threads to look at their MP state and interrupt flag; each look that finds a vCPU wakeable (an idle guest's
 * HLT with interrupts on) doubles the interval, up to HALT_WATCH_MAX_MS.
 */
const HALT_WATCH_MS = 10;
const HALT_WATCH_MAX_MS = 1000;

const KVM_SYSTEM_EVENT_SHUTDOWN = 1;
const KVM_SYSTEM_EVENT_RESET = 2;
const KVM_SYSTEM_EVENT_CRASH = 3;
const INTERNAL_ERROR_SUBERRORS: Readonly<Record<number, string>> = {
  1: "emulation failure",
  2: "simultaneous exception",
  3: "delivery event",
  4: "unexpected exit",
};

/** Hex of an exact integer; a number above 2^53 has lost its low bits, so registers come as bigints. */
export const hex = (n: number | bigint) => `0x${n.toString(16)}`;
export const hexBytes = (b: Uint8Array | undefined) =>
  b && b.length ? Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ") : "(none)";

function describeError(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Runs vCPUs round-robin on the JS thread. Each `vcpu.run` handles port-I/O and MMIO exits synchronously through
 * the address spaces and returns "yield" when the event loop has work or the slice is over; the loop then lets
 * the event loop run (setImmediate) before re-entering, so timers, sockets and files keep being served.
 * The first stop (device request, guest failure, device fault) wins; every vCPU is asked to stop.
 */
export class RunLoop extends LoopControl<LoopVcpu> {
  readonly dispatch: LoopExitDispatch;
  /** Exits handled, for statistics: all of them, and per kind. */
  exits = 0;
  pioExits = 0;
  mmioExits = 0;

  /** vcpuThreads: the dispatch the threads' exits come through, counting the exits being handled. */
  private readonly threadDispatch: LoopExitDispatch;
  private dispatching = 0;

  constructor(private readonly options: RunLoopOptions) {
    super();
    this.dispatch = this.createDispatch();
    this.threadDispatch = this.countingDispatch(this.dispatch);
  }

  async run(): Promise<MachineResult> {
    if (this.options.vcpuThreads) return this.runThreaded();
    const slice = this.options.maxSliceMs ?? 5;
    while (!this.result) {
      for (const vcpu of this.vcpus) {
        if (this.result || this.pauseGate.paused) break;
        this.current = vcpu;
        let r: LoopRunResult;
        try {
          r = vcpu.run(this.dispatch, { maxSliceMs: slice });
        } catch (e) {
          this.stop({ status: 1, reason: "error", message: `vCPU ${vcpu.id}: KVM_RUN failed: ${describeError(e)}` });
          break;
        }
        if (this.result) break;
        this.handle(vcpu, r);
      }
      this.current = undefined;
      if (!this.result && this.vcpus.length > 0 && this.vcpus.every((v) => v.parked?.() === true)) {
        this.stop({ status: 0, reason: "halt", message: `all vCPUs halted with interrupts disabled` });
      }
      if (!this.result) await new Promise<void>((resolve) => setImmediate(resolve));
      if (!this.result) await this.pauseGate.wait();
    }
    return this.result;
  }

  /**
   * vcpuThreads: every vCPU runs on its own thread at once; a thread that ends without a result (kicked for a pause,
   * or a device's requestStop) is started again once the machine is not paused.
   */
  private async runThreaded(): Promise<MachineResult> {
    const stopWatch = this.watchForHalt();
    try {
      await Promise.all(this.vcpus.map((v) => this.runVcpuThread(v)));
    } finally {
      stopWatch();
    }
    return this.result!;
  }

  /**
   * vcpuThreads: a vCPU halted with interrupts disabled stays inside KVM_RUN on its thread, so the JS-thread loop's
   * check after each slice cannot see it. Instead a timer reads every vCPU's blocking state; when all wait in the
   * kernel, it stops the threads (pause), stops the run with "halt" if every vCPU is parked, and resumes otherwise.
   * Returns the function that ends the watch.
   */
  private watchForHalt(): () => void {
    if (this.vcpus.length === 0 || !this.vcpus.every((v) => v.blocked && v.parked)) return () => {};
    let delay = HALT_WATCH_MS;
    let timer: NodeJS.Timeout | undefined;
    const look = () => {
      if (this.result) return;
      try {
        if (!this.pauseGate.paused && this.dispatching === 0 && this.vcpus.every((v) => v.blocked!())) {
          if (this.stopIfParked()) return;
          delay = Math.min(delay * 2, HALT_WATCH_MAX_MS);
        }
      } catch {
        return; // a vCPU closed under the watch (the machine is closing): nothing more to watch
      }
      timer = setTimeout(look, delay).unref();
    };
    timer = setTimeout(look, delay).unref();
    return () => clearTimeout(timer);
  }

  /** Stops every thread, and the run with "halt" when every vCPU is parked; otherwise lets them run on. */
  private stopIfParked(): boolean {
    if (!this.pause()) return false;
    let parked: boolean;
    try {
      parked = this.vcpus.every((v) => v.parked!());
    } catch (e) {
      this.stop({ status: 1, reason: "error", message: `reading the halted vCPUs' state failed: ${describeError(e)}` });
      return true;
    }
    if (parked) this.stop({ status: 0, reason: "halt", message: `all vCPUs halted with interrupts disabled` });
    else this.resume();
    return parked;
  }

  private async runVcpuThread(vcpu: LoopVcpu): Promise<void> {
    if (!vcpu.runOnThread) throw new Error(`vCPU ${vcpu.id} cannot run on a thread of its own`);
    while (!this.result) {
      while (this.pauseGate.paused && !this.result) await this.pauseGate.wait();
      if (this.result) return;
      let r: LoopRunResult;
      try {
        r = await vcpu.runOnThread(this.threadDispatch);
      } catch (e) {
        this.stop({ status: 1, reason: "error", message: `vCPU ${vcpu.id}: KVM_RUN failed: ${describeError(e)}` });
        return;
      }
      if (!this.result) this.handle(vcpu, r);
    }
  }

  /**
   * vcpuThreads: every thread leaves KVM_RUN before this returns (joined, an exit it waits on answered here), so the
   * vCPUs' state can be read at once. From an exit handler the threads are only kicked (they end after their exits).
   */
  override pause(): boolean {
    if (!super.pause()) return false;
    if (this.options.vcpuThreads) {
      for (const v of this.vcpus) {
        if (this.dispatching > 0) v.kick?.();
        else v.stopThread?.();
      }
    }
    return true;
  }

  /** vcpuThreads: a thread inside KVM_RUN sees no stop request until it exits, so each is kicked out. */
  override stop(result: MachineResult): void {
    const first = !this.result;
    super.stop(result);
    if (!first || !this.options.vcpuThreads) return;
    for (const v of this.vcpus) {
      try {
        v.kick?.();
      } catch {
        // a closed vCPU runs no thread
      }
    }
  }

  private countingDispatch(d: LoopExitDispatch): LoopExitDispatch {
    return {
      pio: (port, size, isWrite, value) => {
        this.dispatching++;
        try {
          return d.pio(port, size, isWrite, value);
        } finally {
          this.dispatching--;
        }
      },
      mmio: (address, size, isWrite, lo, hi) => {
        this.dispatching++;
        try {
          return d.mmio(address, size, isWrite, lo, hi);
        } finally {
          this.dispatching--;
        }
      },
    };
  }

  private handle(vcpu: LoopVcpu, r: LoopRunResult): void {
    const id = vcpu.id;
    const at = (rip: unknown) => (typeof rip === "number" || typeof rip === "bigint" ? ` at RIP ${hex(rip)}` : "");
    switch (r.reason) {
      case "yield":
        return;
      case "hlt":
        return this.stop({ status: 0, reason: "halt", message: `vCPU ${id} halted` });
      case "shutdown":
        return this.stop({
          status: 1,
          reason: "shutdown",
          message: `vCPU ${id}: the guest shut down (triple fault)${at((r as { rip?: number | bigint }).rip)}`,
        });
      case "internal-error": {
        const e = r as { suberror: number; rip?: number | bigint; bytes?: Uint8Array };
        const kind = INTERNAL_ERROR_SUBERRORS[e.suberror] ?? `suberror ${e.suberror}`;
        return this.stop({
          status: 1,
          reason: "error",
          message: `vCPU ${id}: KVM internal error (${kind})${at(e.rip)}, instruction bytes: ${hexBytes(e.bytes)}`,
        });
      }
      case "fail-entry": {
        const e = r as { code: number | bigint; rip?: number | bigint };
        return this.stop({ status: 1, reason: "error", message: `vCPU ${id}: VM entry failed, hardware reason ${hex(e.code)}${at(e.rip)}` });
      }
      case "system-event": {
        const type = (r as { type: number }).type;
        if (type === KVM_SYSTEM_EVENT_RESET) return this.stop({ status: 0, reason: "reset", message: `vCPU ${id} requested a reset` });
        if (type === KVM_SYSTEM_EVENT_SHUTDOWN) return this.stop({ status: 0, reason: "shutdown", message: `vCPU ${id} powered off` });
        if (type === KVM_SYSTEM_EVENT_CRASH) return this.stop({ status: 1, reason: "error", message: `vCPU ${id}: the guest crashed` });
        return this.stop({ status: 1, reason: "error", message: `vCPU ${id}: unknown system event ${type}` });
      }
      default: {
        const e = r as { exitReason?: number; rip?: number | bigint };
        return this.stop({
          status: 1,
          reason: "error",
          message: `vCPU ${id}: unexpected exit ${r.reason}${e.exitReason !== undefined ? ` (KVM exit reason ${e.exitReason})` : ""}${at(e.rip)}`,
        });
      }
    }
  }

  /** A device handler threw: stop the VM naming the device, never propagate the exception into the binding. */
  private fault(space: AddressSpace, address: number, write: boolean, error: unknown): void {
    const owner = space.find(address)?.owner ?? "(no device)";
    this.options.logger.debug(`device fault: ${error instanceof Error && error.stack ? error.stack : String(error)}`);
    this.stop({
      status: 1,
      reason: "error",
      message: `device ${owner} failed on a ${space.name} ${write ? "write" : "read"} at ${hex(address)}: ${describeError(error)}`,
    });
  }

  private createDispatch(): LoopExitDispatch {
    const { pio, mmio, logger, trace } = this.options;
    return {
      pio: (port, size, isWrite, value) => {
        this.exits++;
        this.pioExits++;
        if (trace) logger.debug(`vCPU ${this.current?.id}: pio ${isWrite ? "out" : "in"}${size} ${hex(port)}${isWrite ? ` = ${hex(value)}` : ""}`);
        try {
          if (isWrite) {
            pio.write(port, size as SmallAccessSize, value);
            return 0;
          }
          return pio.read(port, size as SmallAccessSize);
        } catch (e) {
          this.fault(pio, port, isWrite, e);
          return allOnes(size as SmallAccessSize);
        }
      },
      mmio: (address, size, isWrite, lo, hi) => {
        this.exits++;
        this.mmioExits++;
        const written64 = isWrite && size === 8 ? (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0) : undefined;
        if (trace) logger.debug(`vCPU ${this.current?.id}: mmio ${isWrite ? "write" : "read"}${size} ${hex(address)}${isWrite ? ` = ${hex(written64 ?? lo)}` : ""}`);
        try {
          if (size === 8) {
            if (written64 !== undefined) {
              mmio.write64(address, written64);
              return 0;
            }
            return mmio.read64(address);
          }
          if (isWrite) {
            mmio.write(address, size as SmallAccessSize, lo);
            return 0;
          }
          return mmio.read(address, size as SmallAccessSize);
        } catch (e) {
          this.fault(mmio, address, isWrite, e);
          return size === 8 ? 0xffff_ffff_ffff_ffffn : allOnes(size as SmallAccessSize);
        }
      },
    };
  }
}
