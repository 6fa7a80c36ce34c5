import type { Handle } from "./services.js";

/** A level-triggered interrupt line (PCI INTx, an ISA IRQ). */
export interface InterruptLine {
  readonly level: boolean;
  set(level: boolean): void;
  /**
   * Lets a pair of eventfds drive the line with no userspace hop, where the platform can (KVM_IRQFD with a
   * resample fd): a write to `trigger` asserts the line; when the guest acknowledges the interrupt (its EOI) the
   * platform deasserts it and writes `resample`, and the source writes `trigger` again if it still needs service.
   * That level is ORed with what `set` drives. Absent where the platform has no such path: the source then
   * watches its own eventfd and calls `set`. `remove()` deasserts what the pair asserted; keep both fds open until
   * then.
   */
  irqfd?(trigger: number, resample: number): Handle;
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

/** What an `InterruptLine.irqfd` does, for lines built from parts (EdgeForwardingLine, SharedLine). */
export type IrqfdConnector = (trigger: number, resample: number) => Handle;

/**
 * A line that forwards level changes to a sink only when the level changes. Several sources can share one
 * sink line through `SharedLine` (PCI INTx sharing is wired-OR). With `irqfd`, the line offers that path too.
 */
export class EdgeForwardingLine implements InterruptLine {
  private current = false;
  readonly irqfd?: IrqfdConnector;
  constructor(
    private readonly sink: (level: boolean) => void,
    irqfd?: IrqfdConnector,
  ) {
    if (irqfd) this.irqfd = irqfd;
  }
  get level(): boolean {
    return this.current;
  }
  set(level: boolean): void {
    if (level === this.current) return;
    this.current = level;
    this.sink(level);
  }
}

/**
 * A wired-OR line: asserted while any of its sources is asserted. Each source offers the target's `irqfd` path
 * when the target has one (the platform ORs eventfd-driven levels with the ones set here).
 */
export class SharedLine {
  private asserted = 0;
  constructor(private readonly target: InterruptLine) {}
  /** A new source driving this line. */
  source(): InterruptLine {
    const target = this.target;
    return new EdgeForwardingLine(
      (level) => {
        this.asserted += level ? 1 : -1;
        target.set(this.asserted > 0);
      },
      target.irqfd ? (trigger, resample) => target.irqfd!(trigger, resample) : undefined,
    );
  }
}
