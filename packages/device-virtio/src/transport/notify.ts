import type { Handle, IoEventRequest, IoEventRegistry } from "@vmm/core";
import { hasEventFdRegistration } from "../dataplane/api.js";

/** One doorbell: where the guest writes to notify `queue`, relative to its BAR. */
export interface Doorbell {
  readonly queue: number;
  readonly offset: number;
  readonly size: IoEventRequest["size"];
  readonly datamatch?: number;
}

/**
 * Keeps the ioevent registrations of one BAR's doorbells in step with where the guest placed the BAR: when the
 * window moves, the old addresses are released before the new ones are registered, so a stale address never
 * notifies. Writes that reach the BAR handler instead (no ioeventfd) are handled by the register files.
 */
export class Doorbells {
  private handles: Handle[] = [];
  private base: number | undefined;

  constructor(
    private readonly ioevents: IoEventRegistry,
    private readonly space: IoEventRequest["space"],
    private readonly doorbells: readonly Doorbell[],
    private readonly ring: (queue: number) => void,
    /** A queue whose data-plane worker waits on an eventfd: the doorbell signals it directly when the registry can. */
    private readonly eventFdOf: (queue: number) => number | undefined = () => undefined,
  ) {}

  /** The BAR window is decoded at `base`. */
  activate(base: number): void {
    this.deactivate();
    this.base = base;
    for (const d of this.doorbells) {
      const request: IoEventRequest = {
        space: this.space,
        address: base + d.offset,
        size: d.size,
        ...(d.datamatch === undefined ? {} : { datamatch: d.datamatch }),
      };
      const fd = this.eventFdOf(d.queue);
      if (fd !== undefined && hasEventFdRegistration(this.ioevents)) this.handles.push(this.ioevents.addEventFd(request, fd));
      else this.handles.push(this.ioevents.add(request, () => this.ring(d.queue)));
    }
  }

  /** The window stopped being decoded (moved, or memory/I/O decode turned off). */
  deactivate(): void {
    for (const h of this.handles) h.remove();
    this.handles = [];
    this.base = undefined;
  }

  /** Where the doorbells are registered now (undefined when not decoded). */
  get address(): number | undefined {
    return this.base;
  }
}
