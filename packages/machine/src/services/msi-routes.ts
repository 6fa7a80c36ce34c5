import { ConfigurationError, type MsiMessage } from "@vmm/core";
import { EventFd } from "@vmm/host-io";
import type { GsiRoute, Vm } from "@vmm/kvm-native";
import { IOAPIC_PINS } from "./interrupts.js";

/** An MSI delivered by the kernel when its eventfd is written (KVM irqfd over an MSI GSI route). */
export interface MsiRoute {
  readonly gsi: number;
  /** The eventfd to hand to a backend (or write with `trigger`). */
  readonly eventFd: EventFd;
  /** Raises the interrupt from JS (the same path a backend writing the eventfd takes). */
  trigger(): void;
  /** Points the route at a new message (the guest reprogrammed the MSI/MSI-X entry). */
  update(message: MsiMessage): void;
  /** Removes the irqfd and the route; calling it twice is harmless. */
  remove(): void;
}

/** KVM's default routes, which KVM_SET_GSI_ROUTING would otherwise drop: ISA IRQs to both PICs and the IOAPIC. */
function irqchipRoutes(): GsiRoute[] {
  const routes: GsiRoute[] = [];
  for (let gsi = 0; gsi < IOAPIC_PINS; gsi++) {
    if (gsi < 16) routes.push({ gsi, type: "irqchip", irqchip: gsi < 8 ? 0 : 1, pin: gsi % 8 });
    routes.push({ gsi, type: "irqchip", irqchip: 2, pin: gsi });
  }
  return routes;
}

/**
 * A machine's GSI routing table as the router writes it (route type `R`: the VM's setGsiRouting entries).
 * KVM_SET_GSI_ROUTING replaces the whole table, KVM's default routes included.
 */
export interface GsiRoutingTable<R> {
  /** The routes kept beside the MSI routes: the defaults the machine's lines still use. */
  readonly fixed: () => R[];
  /** The first GSI an MSI route takes (above the fixed ones). */
  readonly firstMsiGsi: number;
  /** The route that delivers `message` at `gsi` (the message may carry more than address and data, e.g. a device id). */
  readonly msi: (gsi: number, message: MsiMessage) => R;
}

/** x86_64's table: the ISA IRQs and IOAPIC pins, MSI routes above the IOAPIC's pins. */
export const X86_GSI_ROUTING: GsiRoutingTable<GsiRoute> = {
  fixed: irqchipRoutes,
  firstMsiGsi: IOAPIC_PINS,
  msi: (gsi, m) => ({ gsi, type: "msi", address: m.address, data: m.data }),
};

const MAX_GSI = 1024;

/** What a vector set needs of a router: routes, and batches of changes written to KVM at once. */
export interface MsiRouteAllocator {
  add(message: MsiMessage): MsiRoute;
  batch<T>(fn: () => T): T;
}

/**
 * GSI routing for MSIs delivered without a userspace round trip: each route is an MSI GSI above the table's fixed
 * routes (x86_64: the IOAPIC pins) with an irqfd on it. KVM_SET_GSI_ROUTING replaces the whole table (the fixed
 * routes plus the MSI routes), so it is rewritten on every change, or once at the end of a `batch`. `R` is the
 * VM's route type; the default table is x86_64's.
 */
export class MsiRouter<R = GsiRoute> implements MsiRouteAllocator {
  /** Route table rewrites (KVM_SET_GSI_ROUTING calls) so far. */
  commits = 0;
  /** Interrupts raised through `trigger()` so far (writes to a route's eventfd from JS). */
  triggers = 0;
  private readonly routes = new Map<number, MsiMessage>();
  private readonly free: number[] = [];
  private next: number;
  private depth = 0;
  private dirty = false;
  /** irqfds to assign once the batch's table is in KVM. */
  private pendingIrqfds: Array<() => void> = [];

  constructor(
    private readonly vm: { setGsiRouting(entries: R[]): void; irqfd: Vm["irqfd"] },
    private readonly createEventFd: () => EventFd = () => new EventFd(),
    private readonly table: GsiRoutingTable<R> = X86_GSI_ROUTING as unknown as GsiRoutingTable<R>,
  ) {
    this.next = table.firstMsiGsi;
  }

  /** MSI routes in use. */
  get size(): number {
    return this.routes.size;
  }

  /**
   * Runs `fn` with one routing table rewrite at the end instead of one per add/update/remove. Routes added inside
   * get their irqfd after that rewrite; nested batches commit with the outermost.
   */
  batch<T>(fn: () => T): T {
    this.depth++;
    try {
      return fn();
    } finally {
      if (--this.depth === 0) this.flush();
    }
  }

  add(message: MsiMessage): MsiRoute {
    const gsi = this.free.pop() ?? this.next++;
    if (gsi >= MAX_GSI) {
      this.next = Math.min(this.next, MAX_GSI);
      throw new ConfigurationError(`out of MSI routes (${MAX_GSI - this.table.firstMsiGsi})`);
    }
    this.routes.set(gsi, message);
    const eventFd = this.createEventFd();
    let irqfd: { remove(): void } | undefined;
    let removed = false;
    const assign = () => {
      if (!removed) irqfd = this.vm.irqfd(eventFd, gsi);
    };
    if (this.depth > 0) {
      this.dirty = true;
      this.pendingIrqfds.push(assign);
    } else {
      try {
        this.commit();
        assign();
      } catch (e) {
        this.routes.delete(gsi);
        this.free.push(gsi);
        eventFd.close();
        throw e;
      }
    }
    return {
      gsi,
      eventFd,
      trigger: () => {
        this.triggers++;
        eventFd.write(1);
      },
      update: (m) => {
        if (removed) return;
        this.routes.set(gsi, m);
        this.changed();
      },
      remove: () => {
        if (removed) return;
        removed = true;
        irqfd?.remove();
        eventFd.close();
        this.routes.delete(gsi);
        this.free.push(gsi);
        this.changed();
      },
    };
  }

  private changed(): void {
    if (this.depth > 0) this.dirty = true;
    else this.commit();
  }

  private flush(): void {
    const assign = this.pendingIrqfds;
    this.pendingIrqfds = [];
    if (this.dirty) this.commit();
    for (const a of assign) a();
  }

  private commit(): void {
    this.dirty = false;
    this.commits++;
    const msi = [...this.routes].map(([gsi, m]) => this.table.msi(gsi, m));
    this.vm.setGsiRouting([...this.table.fixed(), ...msi]);
  }
}
