import type { Logger, MsiController, MsiMessage } from "@vmm/core";
import type { MsiRoute, MsiRouter } from "./msi-routes.js";

/** What the router needs of an MSI-X capability (structurally `@vmm/pci`'s MsixCapability). */
export interface MsixTable {
  readonly vectors: number;
  readonly enabled: boolean;
  readonly functionMasked: boolean;
  masked(vector: number): boolean;
  message(vector: number): { address: number; data: number };
  connect(controller: MsiController): void;
  subscribe(listener: (change: { vector: number } | { vector: "all" }) => void): void;
}

/** Whether `value` has the MSI-X capability surface the irqfd router mirrors. */
export function isMsixTable(value: unknown): value is MsixTable {
  const v = value as Partial<Record<keyof MsixTable, unknown>> | undefined;
  return (
    typeof v === "object" && v !== null && typeof v.vectors === "number" && typeof v.masked === "function" &&
    typeof v.message === "function" && typeof v.connect === "function" && typeof v.subscribe === "function"
  );
}

const keyOf = (m: MsiMessage) => `${m.address}:${m.data}`;
const same = (a: MsiMessage | undefined, b: MsiMessage) => a !== undefined && a.address === b.address && a.data === b.data;

/**
 * Delivers one PCI function's MSI-X vectors through KVM irqfds: each vector gets an MSI GSI route holding the
 * message its table entry has, and a delivery is a write to that route's eventfd. The capability still decides
 * masking and pending bits; this only replaces the final `signal`. Routes are created and updated when a vector
 * is deliverable (MSI-X on, function and vector unmasked) and its message differs from the route's, so a driver
 * writing a masked entry field by field costs nothing, and all changes of one config/table write go to KVM in one
 * routing table rewrite. A message no route carries (no GSI left, a failed ioctl) falls back to `fallback`.
 */
export class MsixIrqfdRouter implements MsiController {
  /** Deliveries that went to `fallback` instead of an irqfd. */
  fallbacks = 0;
  private readonly routes: Array<MsiRoute | undefined>;
  private readonly programmed: Array<MsiMessage | undefined>;
  /** The message a vector's route could not be made for: not retried (an ioctl per delivery) until it changes. */
  private readonly failed: Array<MsiMessage | undefined>;
  /** Route per message in KVM (vectors sharing a message are the same interrupt, any of their routes will do). */
  private readonly byMessage = new Map<string, MsiRoute>();
  private closed = false;
  private warned = false;

  constructor(
    private readonly msix: MsixTable,
    private readonly router: MsiRouter,
    private readonly fallback: MsiController,
    private readonly logger: Logger,
    private readonly name: string,
  ) {
    this.routes = new Array<MsiRoute | undefined>(msix.vectors).fill(undefined);
    this.programmed = new Array<MsiMessage | undefined>(msix.vectors).fill(undefined);
    this.failed = new Array<MsiMessage | undefined>(msix.vectors).fill(undefined);
    msix.subscribe((change) => {
      if (this.closed) return;
      if (change.vector === "all") this.sync(this.allVectors());
      else this.sync([change.vector]);
    });
    msix.connect(this);
    this.sync(this.allVectors());
  }

  /**
   * The route of `vector` while it is in KVM, for a backend that signals the eventfd itself. Such writes bypass
   * the capability's masking: a backend may only write while the vector is deliverable (routes follow the table
   * only then).
   */
  route(vector: number): MsiRoute | undefined {
    return this.routes[vector];
  }

  signal(message: MsiMessage): void {
    if (this.closed) return this.fallback.signal(message);
    let route = this.byMessage.get(keyOf(message));
    if (!route) {
      // The capability delivers before it reports the write that unmasked the vector: sync the vectors holding it.
      const holders = this.allVectors().filter((v) => same(this.msix.message(v), message));
      this.sync(holders);
      route = this.byMessage.get(keyOf(message)) ?? this.relink(message);
    }
    if (route) route.trigger();
    else {
      this.fallbacks++;
      this.fallback.signal(message);
    }
  }

  /** Removes every route (function detached or machine closed); later deliveries use `fallback`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.msix.connect(this.fallback);
    this.router.batch(() => {
      for (const r of this.routes) r?.remove();
    });
    this.routes.fill(undefined);
    this.programmed.fill(undefined);
    this.byMessage.clear();
  }

  /** Finds a route already carrying `message` whose lookup entry went away with another vector's change. */
  private relink(message: MsiMessage): MsiRoute | undefined {
    const v = this.programmed.findIndex((m, i) => same(m, message) && this.routes[i] !== undefined);
    if (v < 0) return undefined;
    const route = this.routes[v]!;
    this.byMessage.set(keyOf(message), route);
    return route;
  }

  private allVectors(): number[] {
    return Array.from({ length: this.msix.vectors }, (_, v) => v);
  }

  private deliverable(vector: number): boolean {
    return this.msix.enabled && !this.msix.functionMasked && !this.msix.masked(vector);
  }

  private sync(vectors: readonly number[]): void {
    const stale = vectors.filter((v) => {
      if (v < 0 || v >= this.msix.vectors || !this.deliverable(v)) return false;
      const m = this.msix.message(v);
      return !same(this.programmed[v], m) && !same(this.failed[v], m);
    });
    if (stale.length === 0) return;
    try {
      this.router.batch(() => {
        for (const v of stale) this.program(v, this.msix.message(v));
      });
    } catch (e) {
      if (!this.warned) this.logger.warn(`${this.name}: MSI-X through irqfd failed, falling back to KVM_SIGNAL_MSI: ${(e as Error).message}`);
      this.warned = true;
      for (const v of stale) {
        this.failed[v] = this.msix.message(v);
        this.forget(v);
      }
    }
  }

  private program(vector: number, message: MsiMessage): void {
    this.forget(vector, false);
    const existing = this.routes[vector];
    if (existing) existing.update(message);
    else this.routes[vector] = this.router.add(message);
    this.programmed[vector] = message;
    this.failed[vector] = undefined;
    this.byMessage.set(keyOf(message), this.routes[vector]!);
  }

  /** Drops `vector`'s message from the lookup (and, with `remove`, its route). */
  private forget(vector: number, remove = true): void {
    const old = this.programmed[vector];
    const route = this.routes[vector];
    if (old && route && this.byMessage.get(keyOf(old)) === route) this.byMessage.delete(keyOf(old));
    if (!remove) return;
    this.programmed[vector] = undefined;
    if (route) {
      try {
        route.remove();
      } catch {
        // A failed deassign leaves nothing this function can use: the vector is delivered by `fallback` from now.
      }
      this.routes[vector] = undefined;
    }
  }
}
