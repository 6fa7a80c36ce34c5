import type { FdtNodeBuilder } from "@vmm/fdt";
import { TIMER_PPIS } from "../layout.js";
import { ppi } from "./interrupts.js";

// /timer: the architected timer, its four PPIs in the binding's order (secure, non-secure, virtual, hypervisor).

export function addTimer(root: FdtNodeBuilder, cpuMask: number): void {
  const order = [TIMER_PPIS.securePhysical, TIMER_PPIS.nonSecurePhysical, TIMER_PPIS.virtual, TIMER_PPIS.hypervisor];
  root.node("timer", (n) => n.string("compatible", "arm,armv8-timer").cells("interrupts", order.flatMap((p) => ppi(p, cpuMask))));
}
