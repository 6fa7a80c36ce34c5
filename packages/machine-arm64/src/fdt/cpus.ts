import type { FdtNodeBuilder } from "@vmm/fdt";

// /cpus: one node per vCPU, reg = its MPIDR affinity as KVM assigns it, started and stopped through PSCI.

/** KVM's MPIDR affinity for vCPU `index` (Aff0 = 16 per cluster, then Aff1, Aff2): the cpu node's reg. */
export function cpuMpidr(index: number): number {
  return (index & 0xf) | (((index >> 4) & 0xff) << 8) | (((index >> 12) & 0xff) << 16);
}

export function addCpus(root: FdtNodeBuilder, cpus: number): void {
  root.node("cpus", (n) => {
    n.u32("#address-cells", 1).u32("#size-cells", 0);
    for (let i = 0; i < cpus; i++) {
      const mpidr = cpuMpidr(i);
      n.node(`cpu@${mpidr.toString(16)}`, (cpu) =>
        cpu.string("device_type", "cpu").string("compatible", "arm,arm-v8").u32("reg", mpidr).string("enable-method", "psci"),
      );
    }
  });
}
