import { type DeviceState, type IoHandler, type SmallAccessSize, type Snapshottable, stateData } from "@vmm/core";
import { stateBigInt } from "../snapshot/fields.js";

/** Where ICH9's ACPI block (PMBASE 0x600) puts the PM timer; firmware tables point the guest at it. */
export const PM_TIMER_PORT = 0x608;
/** The ACPI PM timer's fixed rate (ACPI 6.5, 4.8.3.3): 3.579545 MHz. */
export const PM_TIMER_HZ = 3_579_545n;
const MASK_24 = 0xff_ffffn;

/**
 * The ACPI power-management timer: a free-running 24-bit counter at 3.579545 MHz, read through one dword port
 * (any byte lane may be read alone). Writes are ignored. Guests use it as a clocksource and to calibrate the TSC.
 */
export class PmTimer implements IoHandler, Snapshottable {
  /** When the counter was 0, on `nowNs`'s clock (moved by restoreState, so that the count goes on). */
  get startNs(): bigint {
    return this.start;
  }
  private start: bigint;
  /**
   * True when it counts on node's monotonic clock (process.hrtime), which the vCPU run loop can read too: the
   * machine then has the run loop answer its reads (Vcpu.setPmTimer) with the same start.
   */
  readonly onHostClock: boolean;

  /** `nowNs`: a monotonic clock in nanoseconds (default process.hrtime.bigint). */
  constructor(private readonly nowNs: () => bigint = process.hrtime.bigint) {
    this.start = nowNs();
    this.onHostClock = nowNs === process.hrtime.bigint;
  }

  /** The time counted so far: the counter goes on from there after a restore. */
  saveState(): DeviceState {
    return { version: 1, data: { elapsedNs: String(this.nowNs() - this.start) } };
  }

  /** Counts on from the saved time; a machine answering reads in its run loop gives it the new `startNs`. */
  restoreState(state: DeviceState): void {
    this.start = this.nowNs() - stateBigInt(stateData(state, "acpi-pm-timer", 1), "elapsedNs", "acpi-pm-timer");
  }

  /** The counter's value now (24 bits). */
  count(): number {
    return Number((((this.nowNs() - this.start) * PM_TIMER_HZ) / 1_000_000_000n) & MASK_24);
  }

  read(offset: number, size: SmallAccessSize): number {
    const shifted = this.count() >>> (8 * offset);
    return size === 4 ? shifted >>> 0 : shifted & ((1 << (8 * size)) - 1);
  }

  write(): void {}
}
