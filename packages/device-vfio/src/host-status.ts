import { existsSync, readdirSync, readlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { formatHostAddress } from "./host-address.js";
import type { PciAddress } from "@vmm/core";

export type VfioHostStatus =
  | { readonly ok: true; readonly groups: readonly string[] }
  | { readonly ok: false; readonly reason: string };

/**
 * Whether this host can pass PCI functions through with VFIO: a way in exists (the VFIO container /dev/vfio/vfio,
 * or iommufd's /dev/iommu for VFIO cdevs) and the IOMMU exposes groups. `root` lets tests point at a fake /dev and
 * /sys. diagnoseVfioHost (kernel/diagnose.ts) checks everything else, per function.
 */
export function vfioHostStatus(root = "/"): VfioHostStatus {
  if (!existsSync(join(root, "dev/vfio/vfio")) && !existsSync(join(root, "dev/iommu"))) {
    return { ok: false, reason: "no /dev/vfio/vfio (nor /dev/iommu): load the vfio-pci module (modprobe vfio-pci)" };
  }
  const groupsDir = join(root, "sys/kernel/iommu_groups");
  const groups = existsSync(groupsDir) ? readdirSync(groupsDir).sort((a, b) => Number(a) - Number(b)) : [];
  if (groups.length === 0) {
    return { ok: false, reason: "no IOMMU groups: enable the IOMMU (intel_iommu=on or amd_iommu=on on the host)" };
  }
  return { ok: true, groups };
}

/** Where a host function stands: its IOMMU group and the driver bound to it (vfio-pci is needed to pass it). */
export function hostFunctionStatus(address: PciAddress, root = "/"): { group?: string; driver?: string } {
  const dir = join(root, "sys/bus/pci/devices", formatHostAddress(address));
  const link = (name: string) => {
    try {
      return basename(readlinkSync(join(dir, name)));
    } catch {
      return undefined;
    }
  };
  return { group: link("iommu_group"), driver: link("driver") };
}
