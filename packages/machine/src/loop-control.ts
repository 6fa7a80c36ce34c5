import { PauseGate } from "./pause-gate.js";
import type { MachineResult } from "./run-loop.js";

/**
 * What every machine family's run loop shares: its vCPUs, the vCPU in KVM_RUN now, the first stop that wins
 * (every vCPU is then asked to leave KVM_RUN, and a paused loop ends too), and pausing without spinning.
 */
export abstract class LoopControl<V extends { requestStop(): void }> {
  protected result: MachineResult | undefined;
  protected readonly vcpus: V[] = [];
  /** The vCPU whose run is in progress (exits are handled inside it). */
  protected current: V | undefined;
  /** Closed while paused: the loop waits on it between slices. */
  protected readonly pauseGate = new PauseGate();

  add(vcpu: V): void {
    this.vcpus.push(vcpu);
  }

  get stopped(): MachineResult | undefined {
    return this.result;
  }

  get paused(): boolean {
    return this.pauseGate.paused;
  }

  /**
   * Stops entering KVM_RUN until `resume()`; every vCPU keeps its state (it is simply not run). The loop then waits
   * on a promise, so a paused machine costs no CPU. Called from the event loop no vCPU is inside KVM_RUN (they run on
   * this thread); called from an exit handler, that vCPU yields after the exit. False when already paused or ended.
   */
  pause(): boolean {
    if (this.result || !this.pauseGate.close()) return false;
    this.current?.requestStop();
    return true;
  }

  /** Lets a paused loop run its vCPUs again; false when it was not paused. */
  resume(): boolean {
    return this.pauseGate.open();
  }

  /** Ends the run with `result` (the first call wins) and makes every vCPU leave KVM_RUN; a paused loop ends too. */
  stop(result: MachineResult): void {
    if (this.result) return;
    this.result = result;
    this.pauseGate.open();
    for (const v of this.vcpus) {
      try {
        v.requestStop();
      } catch {
        // a vCPU that cannot be stopped any more is not running
      }
    }
  }
}
