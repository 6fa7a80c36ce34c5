import { ConfigurationError } from "@vmm/core";
import { KvmDeviceType, type Arm64Vm, type Vgic, type VgicConfig } from "@vmm/kvm-native";
import type { GicLayout } from "../gic.js";
import { GIC_NR_IRQS } from "../layout.js";

// The in-kernel GIC at the addresses the devicetree gives the guest: GICv3 with its redistributors and ITS, or
// GICv2 with its CPU interface (the v2m MSI frame is the VMM's, see v2m-frame.ts).

/** The vGIC configuration for the memory map's GIC frames. */
export function vgicConfig(gic: GicLayout): VgicConfig {
  if (gic.version === "v3") {
    return { version: 3, distributor: gic.distributor.base, redistributor: gic.redistributors!.base, its: gic.its?.base, nrIrqs: GIC_NR_IRQS };
  }
  return { version: 2, distributor: gic.distributor.base, cpuInterface: gic.cpuInterface!.base, nrIrqs: GIC_NR_IRQS };
}

/**
 * Creates and places the vGIC. KVM initialises it only once every vCPU exists, so this comes after createVcpus
 * and `init()` follows at once. A GICv3 asked of a host whose GIC offers none to guests is refused naming the way
 * out.
 */
export function createVgic(vm: Pick<Arm64Vm, "hasDevice" | "createVgic">, gic: GicLayout): Vgic {
  if (gic.version === "v3" && !vm.hasDevice(KvmDeviceType.ARM_VGIC_V3)) {
    throw new ConfigurationError("this host's KVM has no GICv3 to give guests; use --irqchip gicv2");
  }
  const vgic = vm.createVgic(vgicConfig(gic));
  vgic.init();
  return vgic;
}
