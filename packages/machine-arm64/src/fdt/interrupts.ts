// GIC interrupt specifiers (#interrupt-cells = 3, the arm,gic and arm,gic-v3 bindings): type (0 SPI, 1 PPI),
// number within the type, flags (trigger in bits 0-3; for GICv2 PPIs a CPU mask in bits 8-15).

export const GIC_SPI = 0;
export const GIC_PPI = 1;
export const IRQ_TYPE_LEVEL_HIGH = 4;

export function spi(number: number): number[] {
  return [GIC_SPI, number, IRQ_TYPE_LEVEL_HIGH];
}

/** A level-high PPI; `cpuMask` is GICv2's (one bit per vCPU), 0 on GICv3. */
export function ppi(number: number, cpuMask: number): number[] {
  return [GIC_PPI, number, (cpuMask << 8) | IRQ_TYPE_LEVEL_HIGH];
}

/** GICv2's PPI CPU mask for `cpus` vCPUs; GICv3 has none. */
export function ppiCpuMask(version: "v2" | "v3", cpus: number): number {
  return version === "v2" ? (1 << cpus) - 1 : 0;
}
