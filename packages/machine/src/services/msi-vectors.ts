import type { Logger, MsiController, MsiMessage, MsiVector, MsiVectorFactory, MsiVectorSet } from "@vmm/core";
import type { MsiRoute, MsiRouteAllocator } from "./msi-routes.js";

const same = (a: MsiMessage | undefined, b: MsiMessage | undefined) =>
  a !== undefined && b !== undefined && a.address === b.address && a.data === b.data;

/**
 * The machine's MSI vectors: each PCI function's MSI and MSI-X vectors are delivered through KVM irqfds. A vector
 * gets an MSI GSI route once the capability programs it with a message (it is deliverable: enabled and unmasked),
 * the route follows later messages, and a trigger is a write to the route's eventfd. Masking a vector keeps its
 * route, so a driver that masks, rewrites the same message and unmasks costs nothing; a masked entry written
 * field by field costs nothing either. All the changes of one config or table write reach KVM in one routing
 * table rewrite (`MsiVectorSet.batch`). A message no route carries (no GSI left, a failed ioctl) is sent with
 * `fallback` (KVM_SIGNAL_MSI), with one warning per set.
 */
export class KvmMsiVectors implements MsiVectorFactory {
  private readonly sets = new Set<KvmMsiVectorSet>();

  constructor(
    private readonly router: MsiRouteAllocator,
    private readonly fallback: MsiController,
    private readonly logger: Logger,
  ) {}

  create(owner: string, count: number): KvmMsiVectorSet {
    const set = new KvmMsiVectorSet(owner, count, this.router, this.fallback, this.logger, () => this.sets.delete(set));
    this.sets.add(set);
    return set;
  }

  /** Deliveries of every open set that went to `fallback` instead of an irqfd. */
  get fallbacks(): number {
    let n = 0;
    for (const s of this.sets) n += s.fallbacks;
    return n;
  }

  /** Removes every route (before the VM is closed). */
  close(): void {
    for (const s of [...this.sets]) s.close();
  }
}

/** One capability's vectors over irqfd routes (see KvmMsiVectors). */
export class KvmMsiVectorSet implements MsiVectorSet {
  /** Deliveries that went to `fallback` instead of an irqfd. */
  fallbacks = 0;
  private readonly vectors: MsiVector[];
  /** What the capability programmed: the message while deliverable, else undefined. */
  private readonly desired: Array<MsiMessage | undefined>;
  private readonly routes: Array<MsiRoute | undefined>;
  /** The message each route carries in KVM. */
  private readonly carried: Array<MsiMessage | undefined>;
  /** The message a vector's route could not be made for: not retried (an ioctl per delivery) until it changes. */
  private readonly failed: Array<MsiMessage | undefined>;
  /** Vectors programmed inside the current batch. */
  private readonly stale = new Set<number>();
  private depth = 0;
  private closed = false;
  private warned = false;

  constructor(
    readonly owner: string,
    readonly count: number,
    private readonly router: MsiRouteAllocator,
    private readonly fallback: MsiController,
    private readonly logger: Logger,
    private readonly onClose: () => void,
  ) {
    this.desired = new Array<MsiMessage | undefined>(count).fill(undefined);
    this.routes = new Array<MsiRoute | undefined>(count).fill(undefined);
    this.carried = new Array<MsiMessage | undefined>(count).fill(undefined);
    this.failed = new Array<MsiMessage | undefined>(count).fill(undefined);
    const set = this;
    this.vectors = Array.from({ length: count }, (_, i) => ({
      program: (message: MsiMessage | undefined) => set.program(i, message),
      trigger: () => set.trigger(i),
      get eventFd() {
        return set.eventFd(i);
      },
    }));
  }

  vector(index: number): MsiVector {
    const v = this.vectors[index];
    if (!v) throw new RangeError(`${this.owner}: MSI vector ${index} of ${this.count}`);
    return v;
  }

  batch<T>(fn: () => T): T {
    this.depth++;
    try {
      return fn();
    } finally {
      if (--this.depth === 0) this.sync();
    }
  }

  /** The route of `vector` while it is in KVM (for tests and traces). */
  route(vector: number): MsiRoute | undefined {
    return this.routes[vector];
  }

  /** Removes every route (function detached or machine closed); later deliveries use `fallback`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stale.clear();
    try {
      this.router.batch(() => {
        for (let v = 0; v < this.count; v++) this.forget(v);
      });
    } catch {
      // The routes are gone from this set either way; KVM drops what is left with the VM.
    }
    this.onClose();
  }

  private program(vector: number, message: MsiMessage | undefined): void {
    this.desired[vector] = message;
    if (this.closed || !message) return; // not deliverable: the route (if any) stays for the next unmask
    this.stale.add(vector);
    if (this.depth === 0) this.sync();
  }

  private trigger(vector: number): void {
    const message = this.desired[vector];
    if (!message) return; // the capability triggers only programmed vectors
    const route = this.routes[vector];
    if (!this.closed && route && same(this.carried[vector], message)) return route.trigger();
    if (!this.closed) this.fallbacks++;
    this.fallback.signal(message);
  }

  private eventFd(vector: number): number | undefined {
    const route = this.routes[vector];
    return route && same(this.carried[vector], this.desired[vector]) ? route.eventFd.fd : undefined;
  }

  /** Brings the routes of the vectors programmed since the last sync in line, in one routing table rewrite. */
  private sync(): void {
    const stale = [...this.stale].filter((v) => {
      const m = this.desired[v];
      return m !== undefined && !same(this.carried[v], m) && !same(this.failed[v], m);
    });
    this.stale.clear();
    if (stale.length === 0) return;
    try {
      this.router.batch(() => {
        for (const v of stale) {
          const m = this.desired[v]!;
          const route = this.routes[v];
          if (route) route.update(m);
          else this.routes[v] = this.router.add(m);
          this.carried[v] = m;
          this.failed[v] = undefined;
        }
      });
    } catch (e) {
      if (!this.warned) this.logger.warn(`${this.owner}: MSI through irqfd failed, falling back to KVM_SIGNAL_MSI: ${(e as Error).message}`);
      this.warned = true;
      for (const v of stale) {
        this.failed[v] = this.desired[v];
        this.forget(v);
      }
    }
  }

  /** Removes `vector`'s route. */
  private forget(vector: number): void {
    const route = this.routes[vector];
    this.routes[vector] = undefined;
    this.carried[vector] = undefined;
    if (!route) return;
    try {
      route.remove();
    } catch {
      // A failed deassign leaves nothing this vector can use: it is delivered by `fallback` from now.
    }
  }
}
