import { Arm64Layout } from "./layout.js";
import type { NamedRange } from "./ranges.js";

// The interrupt controller's frames for each GIC version: v3 with an ITS for MSIs, or v2 with a GICv2m frame.

export type GicVersion = "v2" | "v3";

export interface GicLayout {
  readonly version: GicVersion;
  readonly distributor: NamedRange;
  /** GICv3: one region, 128 KiB per vCPU. */
  readonly redistributors?: NamedRange;
  /** GICv2: the CPU interface (8 KiB as the DT describes it; its 64 KiB page is reserved in the map). */
  readonly cpuInterface?: NamedRange;
  /** GICv3: the ITS that translates MSIs to LPIs. */
  readonly its?: NamedRange;
  /** GICv2: the GICv2m frame that turns MSI writes into SPIs. */
  readonly v2m?: NamedRange;
}

/** The frames a GIC of `version` needs for `cpus` vCPUs. */
export function gicLayout(version: GicVersion, cpus: number): GicLayout {
  const L = Arm64Layout;
  const distributor = { name: "the GIC distributor", base: L.gicDistributor.base, size: L.gicDistributor.size };
  if (version === "v3") {
    return {
      version,
      distributor,
      redistributors: { name: "the GIC redistributors", base: L.gicRedistributors.base, size: cpus * L.gicRedistributors.perCpu },
      its: { name: "the GICv3 ITS", base: L.gicIts.base, size: L.gicIts.size },
    };
  }
  return {
    version,
    distributor,
    cpuInterface: { name: "the GIC CPU interface", base: L.gicCpuInterface.base, size: L.gicCpuInterface.used },
    v2m: { name: "the GICv2m MSI frame", base: L.gicV2m.base, size: L.gicV2m.used },
  };
}

/** The GIC frames as the memory map reserves them (whole 64 KiB pages). */
export function gicReservations(gic: GicLayout): NamedRange[] {
  const L = Arm64Layout;
  const out: NamedRange[] = [gic.distributor];
  if (gic.redistributors) out.push(gic.redistributors);
  if (gic.its) out.push(gic.its);
  if (gic.cpuInterface) out.push({ ...gic.cpuInterface, size: L.gicCpuInterface.size });
  if (gic.v2m) out.push({ ...gic.v2m, size: L.gicV2m.size });
  return out;
}
