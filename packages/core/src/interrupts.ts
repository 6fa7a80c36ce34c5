/** A level-triggered interrupt line (PCI INTx, an ISA IRQ). */
export interface InterruptLine {
  readonly level: boolean;
  set(level: boolean): void;
}

/** An MSI message as a device writes it: a 64-bit address and 32-bit data. */
export interface MsiMessage {
  readonly address: number;
  readonly data: number;
}

/** Delivers MSI messages to the interrupt controller. */
export interface MsiController {
  signal(message: MsiMessage): void;
}

/** The machine's interrupt routing: ISA/GSI lines and MSI delivery. */
export interface InterruptController extends MsiController {
  line(gsi: number): InterruptLine;
}

/**
 * A line that forwards level changes to a sink only when the level changes. Several sources can share one
 * sink line through `SharedLine` (PCI INTx sharing is wired-OR).
 */
export class EdgeForwardingLine implements InterruptLine {
  private current = false;
  constructor(private readonly sink: (level: boolean) => void) {}
  get level(): boolean {
    return this.current;
  }
  set(level: boolean): void {
    if (level === this.current) return;
    this.current = level;
    this.sink(level);
  }
}

/** A wired-OR line: asserted while any of its sources is asserted. */
export class SharedLine {
  private asserted = 0;
  constructor(private readonly target: InterruptLine) {}
  /** A new source driving this line. */
  source(): InterruptLine {
    return new EdgeForwardingLine((level) => {
      this.asserted += level ? 1 : -1;
      this.target.set(this.asserted > 0);
    });
  }
}
