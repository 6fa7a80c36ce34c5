import { allOnes, type AddressSpace, type Logger, type SmallAccessSize } from "@vmm/core";
import { Arm64MpState, SystemEvent, type Arm64ExitDispatch, type Arm64VcpuRunResult } from "@vmm/kvm-native";
import { LoopControl, type MachineResult } from "@vmm/machine";

// The arm64 vCPUs on the JS thread, in turn, as the x86_64 machine runs its own: each run handles MMIO exits
// synchronously and returns "yield" when the event loop has work or the slice is over; the loop then lets the
// event loop turn before the next round. A vCPU the guest has powered off (PSCI CPU_OFF, or a secondary not yet
// started with CPU_ON) is skipped: KVM would keep it waiting inside KVM_RUN for the whole slice.

/** What the loop needs of a vCPU (Arm64Vcpu has it). */
export interface Arm64LoopVcpu {
  readonly id: number;
  run(dispatch: Arm64ExitDispatch, options: { maxSliceMs?: number }): Arm64VcpuRunResult;
  requestStop(): void;
  getMpState(): number;
}

export interface Arm64RunLoopOptions {
  readonly mmio: AddressSpace;
  readonly logger: Logger;
  /** Longest time one vCPU runs before the next gets a turn (ms, default 5). */
  readonly maxSliceMs?: number;
  /** Trace every exit through logger.debug. */
  readonly trace?: boolean;
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;
const at = (pc: bigint | undefined) => (pc === undefined ? "" : ` at PC ${hex(pc)}`);

/** The guest's PSCI calls that end the run (KVM_EXIT_SYSTEM_EVENT's type). */
const SYSTEM_EVENTS: Readonly<Record<number, Omit<MachineResult, "message"> & { what: string }>> = {
  [SystemEvent.SHUTDOWN]: { status: 0, reason: "shutdown", what: "powered the machine off (PSCI SYSTEM_OFF)" },
  [SystemEvent.RESET]: { status: 0, reason: "reset", what: "reset the machine (PSCI SYSTEM_RESET)" },
  [SystemEvent.CRASH]: { status: 1, reason: "error", what: "reported a crash" },
};

export class Arm64RunLoop extends LoopControl<Arm64LoopVcpu> {
  readonly dispatch: Arm64ExitDispatch;
  /** MMIO exits handled in userspace. */
  mmioExits = 0;

  constructor(private readonly options: Arm64RunLoopOptions) {
    super();
    this.dispatch = { mmio: (address, size, isWrite, lo, hi) => this.mmio(address, size, isWrite, lo, hi) };
  }

  async run(): Promise<MachineResult> {
    const maxSliceMs = this.options.maxSliceMs ?? 5;
    while (!this.result) {
      let ran = 0;
      for (const vcpu of this.vcpus) {
        if (this.result || this.pauseGate.paused) break;
        if (vcpu.getMpState() === Arm64MpState.STOPPED) continue;
        ran++;
        this.current = vcpu;
        let r: Arm64VcpuRunResult;
        try {
          r = vcpu.run(this.dispatch, { maxSliceMs });
        } catch (e) {
          this.stop({ status: 1, reason: "error", message: `vCPU ${vcpu.id}: KVM_RUN failed: ${(e as Error).message}` });
          break;
        }
        if (!this.result) this.handle(vcpu.id, r);
      }
      this.current = undefined;
      if (!this.result && ran === 0 && !this.pauseGate.paused) this.stop({ status: 0, reason: "halt", message: "every vCPU is powered off (PSCI CPU_OFF)" });
      if (!this.result) await new Promise<void>((resolve) => setImmediate(resolve));
      if (!this.result) await this.pauseGate.wait();
    }
    return this.result;
  }

  private handle(id: number, r: Arm64VcpuRunResult): void {
    switch (r.reason) {
      case "yield":
        return;
      case "system-event": {
        const e = SYSTEM_EVENTS[r.type];
        if (!e) return this.stop({ status: 1, reason: "error", message: `vCPU ${id}: unknown system event ${r.type}` });
        return this.stop({ status: e.status, reason: e.reason, message: `vCPU ${id} ${e.what}` });
      }
      case "internal-error":
        return this.stop({ status: 1, reason: "error", message: `vCPU ${id}: KVM internal error (suberror ${r.suberror})${at(r.pc)}` });
      case "fail-entry":
        return this.stop({ status: 1, reason: "error", message: `vCPU ${id}: VM entry failed, hardware reason ${hex(r.code)}${at(r.pc)}` });
      case "unknown":
        return this.stop({ status: 1, reason: "error", message: `vCPU ${id}: unexpected exit (KVM exit reason ${r.exitReason})${at(r.pc)}` });
      default:
        return this.stop({ status: 1, reason: "error", message: `vCPU ${id}: unexpected run result ${(r as { reason: string }).reason}` });
    }
  }

  private mmio(address: number, size: number, isWrite: boolean, lo: number, hi: number): number | bigint {
    const { mmio, logger, trace } = this.options;
    this.mmioExits++;
    const value64 = isWrite && size === 8 ? (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0) : undefined;
    if (trace) logger.debug(`vCPU ${this.current?.id}: mmio ${isWrite ? "write" : "read"}${size} ${hex(address)}${isWrite ? ` = ${hex(value64 ?? lo)}` : ""}`);
    try {
      if (size === 8) {
        if (value64 === undefined) return mmio.read64(address);
        mmio.write64(address, value64);
        return 0;
      }
      if (!isWrite) return mmio.read(address, size as SmallAccessSize);
      mmio.write(address, size as SmallAccessSize, lo);
      return 0;
    } catch (e) {
      // A device that throws stops the VM naming itself; the exception never reaches the binding.
      const owner = mmio.find(address)?.owner ?? "(no device)";
      logger.debug(`device fault: ${e instanceof Error && e.stack ? e.stack : String(e)}`);
      this.stop({ status: 1, reason: "error", message: `device ${owner} failed on an MMIO ${isWrite ? "write" : "read"} at ${hex(address)}: ${(e as Error).message}` });
      return size === 8 ? 0xffff_ffff_ffff_ffffn : allOnes(size as SmallAccessSize);
    }
  }
}
