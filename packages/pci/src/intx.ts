import type { Handle, InterruptLine, IrqfdConnector } from "@vmm/core";

/** An eventfd pair driving the line (`irqfd`), and its registration on the bus line while INTx is enabled. */
interface EventRoute {
  readonly trigger: number;
  readonly resample: number;
  handle: Handle | undefined;
}

/**
 * A function's INTx output. The device sets its level; the status register's interrupt bit mirrors that level,
 * and the bus line sees it only while the command register's interrupt-disable bit is clear. A passthrough
 * device may drive it from eventfds instead (`irqfd`), under the same interrupt-disable rule.
 */
export class FunctionIntx implements InterruptLine {
  private asserted = false;
  private disabled = false;
  private sink: InterruptLine | undefined;
  private readonly routes = new Set<EventRoute>();

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

  /**
   * Drives the line from an eventfd pair with no userspace hop (core `InterruptLine.irqfd`: `trigger` asserts,
   * the guest's EOI deasserts and writes `resample`), offered while the bus line offers it: undefined before
   * attach and on platforms without irqfd (drive `set` from the eventfd then). A pair is registered on the line
   * only while command.INTx-disable is clear: setting the bit removes it (which deasserts the line), clearing it
   * registers it again. `remove()` ends it; the fds stay the caller's.
   */
  get irqfd(): IrqfdConnector | undefined {
    if (!this.sink?.irqfd) return undefined;
    return (trigger, resample) => this.addRoute(trigger, resample);
  }

  private addRoute(trigger: number, resample: number): Handle {
    const route: EventRoute = { trigger, resample, handle: undefined };
    this.routes.add(route);
    this.syncRoutes();
    return {
      remove: () => {
        if (!this.routes.delete(route)) return;
        route.handle?.remove();
        route.handle = undefined;
      },
    };
  }

  /** @internal the bus line, given at attach. */
  connect(sink: InterruptLine): void {
    for (const r of this.routes) {
      r.handle?.remove();
      r.handle = undefined;
    }
    this.sink = sink;
    this.forward();
    this.syncRoutes();
  }

  /** @internal the command register's interrupt-disable bit. */
  setDisabled(disabled: boolean): void {
    this.disabled = disabled;
    this.forward();
    this.syncRoutes();
  }

  /** Eventfd routes are on the bus line exactly while INTx is enabled. */
  private syncRoutes(): void {
    for (const r of this.routes) {
      if (this.disabled && r.handle) {
        r.handle.remove();
        r.handle = undefined;
      } else if (!this.disabled && !r.handle && this.sink?.irqfd) {
        r.handle = this.sink.irqfd(r.trigger, r.resample);
      }
    }
  }

  private forward(): void {
    this.sink?.set(this.asserted && !this.disabled);
  }
}
