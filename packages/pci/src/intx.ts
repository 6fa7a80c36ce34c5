import type { InterruptLine } from "@vmm/core";

/**
 * A function's INTx output. The device sets its level; the status register's interrupt bit mirrors that level,
 * and the bus line sees it only while the command register's interrupt-disable bit is clear.
 */
export class FunctionIntx implements InterruptLine {
  private asserted = false;
  private disabled = false;
  private sink: InterruptLine | undefined;

  constructor(private readonly onLevel: (level: boolean) => void) {}

  /** The level the device drives (what status bit 3 shows). */
  get level(): boolean {
    return this.asserted;
  }

  set(level: boolean): void {
    this.asserted = level;
    this.onLevel(level);
    this.forward();
  }

  /** Convenience for edge-style devices: assert then leave it to the driver to deassert through the device. */
  raise(): void {
    this.set(true);
  }

  lower(): void {
    this.set(false);
  }

  /** @internal the bus line, given at attach. */
  connect(sink: InterruptLine): void {
    this.sink = sink;
    this.forward();
  }

  /** @internal the command register's interrupt-disable bit. */
  setDisabled(disabled: boolean): void {
    this.disabled = disabled;
    this.forward();
  }

  private forward(): void {
    this.sink?.set(this.asserted && !this.disabled);
  }
}
