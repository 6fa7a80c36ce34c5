// What sysfs, /dev and /proc say about a host function and its IOMMU group. Every path is under `root` so tests
// run against a fake tree; nothing here opens a device or changes the host.
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { basename, join } from "node:path";

export function functionDir(root: string, address: string): string {
  return join(root, "sys/bus/pci/devices", address);
}

/** The last component of a symlink's target ("vfio-pci" for .../drivers/vfio-pci), or undefined. */
export function linkName(path: string): string | undefined {
  try {
    return basename(readlinkSync(path));
  } catch {
    return undefined;
  }
}

export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The driver bound to a function, or undefined when none is. */
export function boundDriver(root: string, address: string): string | undefined {
  return linkName(join(functionDir(root, address), "driver"));
}

/** "10ec:8168" from the function's vendor and device files, when sysfs has them. */
export function functionIds(root: string, address: string): string | undefined {
  const dir = functionDir(root, address);
  const id = (name: string) => readText(join(dir, name))?.trim().replace(/^0x/i, "");
  const vendor = id("vendor");
  const device = id("device");
  return vendor && device ? `${vendor}:${device}` : undefined;
}

/** IOMMU group numbers, in numeric order. */
export function iommuGroups(root: string): string[] {
  try {
    return readdirSync(join(root, "sys/kernel/iommu_groups")).sort((a, b) => Number(a) - Number(b));
  } catch {
    return [];
  }
}

export function functionGroup(root: string, address: string): string | undefined {
  return linkName(join(functionDir(root, address), "iommu_group"));
}

/** The devices of IOMMU group `group`, sorted, with their drivers. */
export function groupMembers(root: string, group: string): { address: string; driver?: string }[] {
  let names: string[];
  try {
    names = readdirSync(join(root, "sys/kernel/iommu_groups", group, "devices")).sort();
  } catch {
    return [];
  }
  return names.map((address) => {
    const driver = linkName(join(root, "sys/kernel/iommu_groups", group, "devices", address, "driver"));
    return driver === undefined ? { address } : { address, driver };
  });
}

/** The function's VFIO character device ("vfio3") when the kernel exposes cdevs (CONFIG_VFIO_DEVICE_CDEV). */
export function functionCdev(root: string, address: string): { name: string; devNumber?: string } | undefined {
  const dir = join(functionDir(root, address), "vfio-dev");
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => /^vfio\d+$/.test(n));
  } catch {
    return undefined;
  }
  const name = names[0];
  if (name === undefined) return undefined;
  const devNumber = readText(join(dir, name, "dev"))?.trim();
  return devNumber ? { name, devNumber } : { name };
}

/** Whether the vfio-pci driver is registered (the module is loaded or built in). */
export function vfioPciLoaded(root: string): boolean {
  return existsSync(join(root, "sys/bus/pci/drivers/vfio-pci"));
}

export interface NodeOwner {
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export function nodeOwner(path: string): NodeOwner | undefined {
  try {
    const s = statSync(path);
    return { mode: s.mode, uid: s.uid, gid: s.gid };
  } catch {
    return undefined;
  }
}

/** A group's name from <root>/etc/group, or its number. */
export function groupName(root: string, gid: number): string {
  const line = readText(join(root, "etc/group"))
    ?.split("\n")
    .find((l) => l.split(":")[2] === String(gid));
  return line?.split(":")[0] || (gid === 0 ? "root" : String(gid));
}

/** A user's name from <root>/etc/passwd, or its number. */
export function userName(root: string, uid: number): string {
  const line = readText(join(root, "etc/passwd"))
    ?.split("\n")
    .find((l) => l.split(":")[2] === String(uid));
  return line?.split(":")[0] || (uid === 0 ? "root" : String(uid));
}

/**
 * RLIMIT_MEMLOCK's soft limit from a /proc/PID/limits text ("Max locked memory  8388608  8388608  bytes"):
 * bytes, "unlimited", or undefined when the line is missing.
 */
export function parseMemlockLimit(limitsText: string): number | "unlimited" | undefined {
  const line = limitsText.split("\n").find((l) => l.startsWith("Max locked memory"));
  const soft = line?.slice("Max locked memory".length).trim().split(/\s+/)[0];
  if (soft === undefined) return undefined;
  if (soft === "unlimited") return "unlimited";
  return /^\d+$/.test(soft) ? Number(soft) : undefined;
}

/** Whether CapEff in a /proc/PID/status text holds CAP_IPC_LOCK (bit 14), which lifts the pinning limit. */
export function hasIpcLock(statusText: string): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)\s*$/im.exec(statusText)?.[1];
  return hex !== undefined && (BigInt(`0x${hex}`) & (1n << 14n)) !== 0n;
}

/**
 * The ranges of /sys/kernel/iommu_groups/N/reserved_regions ("0x00000000fee00000 0x00000000feefffff msi" per
 * line; the end is inclusive). Lines that do not parse are skipped: the file is the kernel's, not hostile input,
 * but a format change must not crash the VMM.
 */
export function parseReservedRegions(text: string): { start: number; end: number; type: string }[] {
  const ranges: { start: number; end: number; type: string }[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)/i.exec(line);
    if (!m) continue;
    const start = Number(BigInt(`0x${m[1]}`));
    const end = Number(BigInt(`0x${m[2]}`));
    if (end >= start) ranges.push({ start, end, type: m[3]! });
  }
  return ranges;
}
