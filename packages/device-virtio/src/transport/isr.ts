import type { InterruptLine } from "@vmm/core";

/**
 * The ISR status byte (virtio 1.x, 4.1.4.5): bit 0 for used buffers, bit 1 for configuration changes. With
 * INTx it drives the line; a read returns the bits, clears them and deasserts the line.
 */
export class IsrRegister {
  private bits = 0;

  constructor(private readonly line: () => InterruptLine | undefined) {}

  get value(): number {
    return this.bits;
  }

  /** Sets `bits`; asserts INTx when `assertLine` (MSI-X is off). */
  raise(bits: number, assertLine: boolean): void {
    this.bits |= bits;
    if (assertLine) this.line()?.set(true);
  }

  readAndClear(): number {
    const v = this.bits;
    this.bits = 0;
    this.line()?.set(false);
    return v;
  }

  /** Puts back saved bits (a snapshot); the INTx level comes back with the PCI function's state. */
  restore(bits: number): void {
    this.bits = bits & 3;
  }

  reset(): void {
    this.bits = 0;
    this.line()?.set(false);
  }
}
