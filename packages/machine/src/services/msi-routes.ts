import { ConfigurationError, type MsiMessage } from "@vmm/core";
import type { EventFd, GsiRoute, Vm } from "@vmm/kvm-native";
import type { InjectionToken } from "tsyringe";
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

/** Machine-specific service (beside core's Tokens): MSI routes backed by irqfd. */
export const MachineTokens = {
  MsiRoutes: Symbol.for("@vmm/machine:MsiRoutes") as InjectionToken<MsiRouter>,
} as const;

/** KVM's default routes, which KVM_SET_GSI_ROUTING would otherwise drop: ISA IRQs to both PICs and the IOAPIC. */
function irqchipRoutes(): GsiRoute[] {
  const routes: GsiRoute[] = [];
  for (let gsi = 0; gsi < IOAPIC_PINS; gsi++) {
    if (gsi < 16) routes.push({ gsi, type: "irqchip", irqchip: gsi < 8 ? 0 : 1, pin: gsi % 8 });
    routes.push({ gsi, type: "irqchip", irqchip: 2, pin: gsi });
  }
  return routes;
}

const FIRST_MSI_GSI = IOAPIC_PINS;
const MAX_GSI = 1024;

/**
 * GSI routing for MSIs delivered without a userspace round trip: each route is an MSI GSI above the IOAPIC pins
 * with an irqfd on it. The whole table (irqchip defaults plus MSI routes) is rewritten on every change.
 */
export class MsiRouter {
  private readonly routes = new Map<number, MsiMessage>();
  private readonly free: number[] = [];
  private next = FIRST_MSI_GSI;

  constructor(private readonly vm: Pick<Vm, "setGsiRouting" | "createEventFd" | "irqfd">) {}

  add(message: MsiMessage): MsiRoute {
    const gsi = this.free.pop() ?? this.next++;
    if (gsi >= MAX_GSI) throw new ConfigurationError(`out of MSI routes (${MAX_GSI - FIRST_MSI_GSI})`);
    this.routes.set(gsi, message);
    const eventFd = this.vm.createEventFd();
    let irqfd: { remove(): void };
    try {
      this.commit();
      irqfd = this.vm.irqfd(eventFd, gsi);
    } catch (e) {
      this.routes.delete(gsi);
      this.free.push(gsi);
      eventFd.close();
      throw e;
    }
    let removed = false;
    return {
      gsi,
      eventFd,
      trigger: () => eventFd.write(1),
      update: (m) => {
        if (removed) return;
        this.routes.set(gsi, m);
        this.commit();
      },
      remove: () => {
        if (removed) return;
        removed = true;
        irqfd.remove();
        eventFd.close();
        this.routes.delete(gsi);
        this.free.push(gsi);
        this.commit();
      },
    };
  }

  private commit(): void {
    const msi: GsiRoute[] = [...this.routes].map(([gsi, m]) => ({ gsi, type: "msi", address: m.address, data: m.data }));
    this.vm.setGsiRouting([...irqchipRoutes(), ...msi]);
  }
}
