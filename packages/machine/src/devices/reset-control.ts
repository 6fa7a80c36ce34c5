import { RegisterTable, type DeviceState, type IoHandler, type Snapshottable, stateData, stateInt } from "@vmm/core";

/** The PCH reset control register: one byte at port 0xCF9, inside the dword of CONFIG_ADDRESS (0xCF8). */
export const RESET_CONTROL_PORT = 0xcf9;

/** Bits: SYS_RST (1) picks a hard reset, RST_CPU (2) starts the reset, FULL_RST (3) a full power cycle. */
const SYS_RST = 0x02;
const RST_CPU = 0x04;
const FULL_RST = 0x08;

export type ResetKind = "soft" | "hard" | "full";

/**
 * Reset control (Intel ICH/PCH, port 0xCF9): writing RST_CPU requests a reset, soft (CPU only) unless SYS_RST or
 * FULL_RST asks for a hard or full one; those two bits read back, RST_CPU reads 0.
 */
export class ResetControl implements Snapshottable {
  private static readonly REGISTERS = new RegisterTable<ResetControl>([
    { name: "RST_CNT", offset: 0, width: 1, read: (r) => r.value, write: (r, v) => r.write(v) },
  ]);
  private value = 0;

  constructor(private readonly onReset: (kind: ResetKind) => void) {}

  saveState(): DeviceState {
    return { version: 1, data: { value: this.value } };
  }

  restoreState(state: DeviceState): void {
    this.value = stateInt(stateData(state, "reset-control", 1), "value", "reset-control", 0, 0xff) & (SYS_RST | FULL_RST);
  }

  read(): number {
    return this.value;
  }

  write(value: number): void {
    this.value = value & (SYS_RST | FULL_RST);
    if (value & RST_CPU) this.onReset(value & FULL_RST ? "full" : value & SYS_RST ? "hard" : "soft");
  }

  reset(): void {
    this.value = 0;
  }

  /**
   * A handler for the four ports at 0xCF8 that sends byte accesses of 0xCF9 here and everything else to `inner`
   * (CONFIG_ADDRESS, which takes dword accesses only).
   */
  overlay(inner: IoHandler): IoHandler {
    const mine = (offset: number, size: number) => offset === RESET_CONTROL_PORT - 0xcf8 && size === 1;
    const port = RESET_CONTROL_PORT - 0xcf8;
    return {
      read: (offset, size) => (mine(offset, size) ? ResetControl.REGISTERS.read(this, offset - port, 1) : inner.read(offset, size)),
      write: (offset, size, value) => (mine(offset, size) ? ResetControl.REGISTERS.write(this, offset - port, 1, value) : inner.write(offset, size, value)),
    };
  }
}
