import type { FdtNodeBuilder } from "@vmm/fdt";

// /psci: KVM implements PSCI 1.x through HVC; 0.2 is listed too for kernels that only know it. Function IDs are the
// standard ones, so no cpu_on/cpu_off properties.

export function addPsci(root: FdtNodeBuilder): void {
  root.node("psci", (n) => n.strings("compatible", ["arm,psci-1.0", "arm,psci-0.2"]).string("method", "hvc"));
}
