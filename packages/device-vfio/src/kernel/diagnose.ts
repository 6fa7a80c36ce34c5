// Host diagnosis for kernel VFIO: each thing passthrough needs from the host is one check with one line that says
// what was found and, when it is a problem, exactly what to do. `vmm doctor vfio` prints the checks; opening a
// device runs the same checks first so it fails with that line instead of an errno.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ConfigurationError, type PciAddress } from "@vmm/core";
import { formatHostAddress, parseHostAddress } from "../host-address.js";
import {
  boundDriver,
  functionCdev,
  functionDir,
  functionGroup,
  functionIds,
  groupMembers,
  groupName,
  hasIpcLock,
  iommuGroups,
  nodeOwner,
  parseMemlockLimit,
  readText,
  userName,
  vfioPciLoaded,
  type NodeOwner,
} from "./sysfs.js";

export type VfioHostCheckName = "function" | "iommu" | "vfio-pci" | "driver" | "group" | "access" | "permission" | "memlock";

export interface VfioHostCheck {
  readonly name: VfioHostCheckName;
  readonly ok: boolean;
  /** One line: what was found and, for a problem, what to do about it. */
  readonly line: string;
  /** For a problem: the commands that fix it, one per entry (run as root where they touch /sys or /dev). */
  readonly fix?: readonly string[];
}

/** How the backend reaches the function; paths are under the diagnosis root. */
export type VfioAccessPath =
  | { readonly kind: "iommufd"; readonly iommu: string; readonly device: string; readonly group: string }
  | { readonly kind: "group"; readonly container: string; readonly groupNode: string; readonly group: string };

export interface VfioHostIdentity {
  readonly uid: number;
  readonly gids: readonly number[];
}

export interface DiagnoseVfioHostOptions {
  /** The host function to check ("0000:01:00.0"); without it only the host-wide checks run. */
  readonly address?: PciAddress | string;
  /** Where /sys, /dev, /proc and /etc are (tests point at a fake tree). Default "/". */
  readonly root?: string;
  /** Guest RAM that VFIO will pin for DMA: checked against RLIMIT_MEMLOCK. */
  readonly guestRamBytes?: number;
  /** RLIMIT_MEMLOCK's soft limit in bytes; default: read <root>/proc/self/limits. */
  readonly memlockLimit?: number | "unlimited";
  /** Whether the process has CAP_IPC_LOCK (no pinning limit); default: read <root>/proc/self/status. */
  readonly ipcLock?: boolean;
  /** Who opens the device nodes; default this process (uid 0 may open anything). */
  readonly identity?: VfioHostIdentity;
}

export interface VfioHostDiagnosis {
  readonly ok: boolean;
  readonly checks: readonly VfioHostCheck[];
  /** The first failing check: the one line an open fails with. */
  readonly problem?: VfioHostCheck;
  /** With an address and no problem in the way: how to open it. */
  readonly access?: VfioAccessPath;
}

/** A host problem that keeps a device from being passed through; the message is the check's line. */
export class VfioHostError extends ConfigurationError {
  constructor(readonly check: VfioHostCheck) {
    super(check.line);
  }
}

/** Drivers that leave an IOMMU group viable: VFIO's own (and its variant drivers), pci-stub, PCIe port services. */
function driverKeepsGroupViable(driver: string | undefined): boolean {
  return driver === undefined || isVfioDriver(driver) || driver === "pci-stub" || driver === "pcieport";
}

/** vfio-pci or a vendor variant of it (mlx5_vfio_pci, nvgrace_gpu_vfio_pci, ...). */
export function isVfioDriver(driver: string | undefined): boolean {
  return driver !== undefined && /(^|[-_])vfio([-_]|$)/.test(driver);
}

/** The commands that hand `address` to vfio-pci: driver_override, unbind from `driver`, reprobe. */
export function rebindCommands(address: string, driver: string | undefined, loaded: boolean): string[] {
  const dir = `/sys/bus/pci/devices/${address}`;
  return [
    ...(loaded ? [] : ["modprobe vfio-pci"]),
    `echo vfio-pci > ${dir}/driver_override`,
    ...(driver === undefined ? [] : [`echo ${address} > ${dir}/driver/unbind`]),
    `echo ${address} > /sys/bus/pci/drivers_probe`,
  ];
}

export function diagnoseVfioHost(options: DiagnoseVfioHostOptions = {}): VfioHostDiagnosis {
  const root = options.root ?? "/";
  const checks: VfioHostCheck[] = [];
  const ok = (name: VfioHostCheckName, line: string) => checks.push({ name, ok: true, line });
  const problem = (name: VfioHostCheckName, line: string, fix?: readonly string[]) =>
    checks.push(fix ? { name, ok: false, line, fix } : { name, ok: false, line });
  let access: VfioAccessPath | undefined;

  const address =
    options.address === undefined
      ? undefined
      : formatHostAddress(typeof options.address === "string" ? parseHostAddress(options.address) : options.address);

  hostChecks: {
    if (address !== undefined) {
      if (!existsSync(functionDir(root, address))) {
        problem("function", `no PCI function ${address} on this host (lspci -D lists the functions there are)`);
        break hostChecks;
      }
      const ids = functionIds(root, address);
      ok("function", `${address} exists${ids ? ` (${ids})` : ""}`);
    }

    const groups = iommuGroups(root);
    if (groups.length === 0) {
      problem(
        "iommu",
        "no IOMMU groups: the host IOMMU is off; boot the host with intel_iommu=on (Intel) or amd_iommu=on (AMD) " +
          "on the kernel command line and enable VT-d / AMD-Vi in the firmware setup",
        ["add intel_iommu=on (Intel) or amd_iommu=on (AMD) to the kernel command line, then reboot"],
      );
      break hostChecks;
    }
    const group = address === undefined ? undefined : functionGroup(root, address);
    if (address !== undefined && group === undefined) {
      problem(
        "iommu",
        `${address} is in no IOMMU group although the IOMMU is on (${groups.length} groups): the IOMMU does not ` +
          "cover it; check the firmware's VT-d / AMD-Vi settings and dmesg for DMAR/IOMMU errors",
      );
      break hostChecks;
    }
    ok("iommu", `IOMMU on: ${groups.length} groups${group === undefined ? "" : `; ${address} is in group ${group}`}`);

    const loaded = vfioPciLoaded(root);
    if (address === undefined || group === undefined) {
      if (loaded) ok("vfio-pci", "the vfio-pci driver is loaded");
      else problem("vfio-pci", "the vfio-pci driver is not loaded: modprobe vfio-pci (as root)", ["modprobe vfio-pci"]);
      break hostChecks;
    }

    const driver = boundDriver(root, address);
    const driverOk = isVfioDriver(driver);
    if (driverOk) {
      ok("driver", `${address} is bound to ${driver}`);
    } else {
      const fix = rebindCommands(address, driver, loaded);
      const what = driver === undefined ? `${address} is bound to no driver` : `${address} is bound to ${driver}`;
      problem("driver", `${what}, not vfio-pci; hand it to vfio-pci as root: ${fix.join("; ")}`, fix);
    }

    checks.push(groupViability(root, group, address, loaded));
    if (!driverOk) break hostChecks; // the device nodes appear only once vfio-pci has the function

    access = accessPath(root, address, group, ok, problem);
    if (access) checkPermissions(root, access, options.identity ?? processIdentity(), ok, problem);
  }

  memlockCheck(root, options, ok, problem);
  const first = checks.find((c) => !c.ok);
  return {
    ok: first === undefined,
    checks,
    ...(first ? { problem: first } : {}),
    ...(access && first === undefined ? { access } : {}),
  };
}

/** The diagnosis as printable lines: "ok  ...", "FAIL ...", each fix command indented below its problem. */
export function diagnosisLines(diagnosis: VfioHostDiagnosis): string[] {
  return diagnosis.checks.flatMap((c) => [
    `${c.ok ? "ok  " : "FAIL"} ${c.name}: ${c.line}`,
    ...(c.fix ?? []).map((command) => `       ${command}`),
  ]);
}

/**
 * Whether IOMMU group `group` is viable for passing `address` through: every other device in it must be bound to
 * a VFIO driver, pci-stub or pcieport, or to nothing. A problem names each device in the way with its driver.
 */
export function groupViability(root: string, group: string, address: string, vfioPciIsLoaded = vfioPciLoaded(root)): VfioHostCheck {
  const members = groupMembers(root, group);
  const blockers = members.filter((m) => m.address !== address && !driverKeepsGroupViable(m.driver));
  if (blockers.length === 0) {
    const listed = members.map((m) => `${m.address} (${m.driver ?? "no driver"})`);
    return { name: "group", ok: true, line: `IOMMU group ${group} is viable${listed.length > 0 ? `: ${listed.join(", ")}` : ""}` };
  }
  const fix = dedupe(blockers.flatMap((b) => rebindCommands(b.address, b.driver, vfioPciIsLoaded)));
  const named = blockers.map((b) => `${b.address} (${b.driver})`).join(", ");
  return {
    name: "group",
    ok: false,
    line:
      `IOMMU group ${group} is not viable: ${named} ${blockers.length === 1 ? "shares" : "share"} it with ${address} ` +
      `and must be bound to vfio-pci too (or unbound); as root: ${fix.join("; ")}`,
    fix,
  };
}

function dedupe(list: string[]): string[] {
  return [...new Set(list)];
}

type Report = (name: VfioHostCheckName, line: string, fix?: readonly string[]) => void;

/** The iommufd cdev where the kernel has one for the function, else the container/group API. */
function accessPath(
  root: string,
  address: string,
  group: string,
  ok: (name: VfioHostCheckName, line: string) => void,
  problem: Report,
): VfioAccessPath | undefined {
  const iommu = join(root, "dev/iommu");
  const container = join(root, "dev/vfio/vfio");
  const groupNode = join(root, "dev/vfio", group);
  const haveIommufd = existsSync(iommu);
  const groupApi = existsSync(container) && existsSync(groupNode);
  const cdev = functionCdev(root, address);
  const viaGroup = (why: string): VfioAccessPath => {
    ok("access", `${why}container/group API: /dev/vfio/vfio with /dev/vfio/${group}`);
    return { kind: "group", container, groupNode, group };
  };

  if (haveIommufd && cdev) {
    const device = join(root, "dev/vfio/devices", cdev.name);
    if (existsSync(device)) {
      ok("access", `iommufd: /dev/vfio/devices/${cdev.name} with /dev/iommu`);
      return { kind: "iommufd", iommu, device, group };
    }
    if (groupApi) return viaGroup(`/dev/vfio/devices/${cdev.name} is missing (udev did not create it); using the `);
    const mknod = cdev.devNumber
      ? `mknod /dev/vfio/devices/${cdev.name} c ${cdev.devNumber.replace(":", " ")}`
      : `udevadm trigger --subsystem-match=vfio-dev`;
    problem(
      "access",
      `sysfs has VFIO device ${cdev.name} for ${address} but /dev/vfio/devices/${cdev.name} is missing ` +
        `(udev did not create it): as root, ${mknod}`,
      [`mkdir -p /dev/vfio/devices`, mknod],
    );
    return undefined;
  }
  if (groupApi) {
    return viaGroup(
      haveIommufd ? `iommufd is present but ${address} has no VFIO cdev (kernel without CONFIG_VFIO_DEVICE_CDEV); ` : "",
    );
  }
  if (haveIommufd) {
    problem(
      "access",
      `iommufd is present (/dev/iommu) but ${address} is not exposed as a VFIO cdev and there is no ` +
        `${existsSync(container) ? `/dev/vfio/${group}` : "/dev/vfio/vfio"} for the container/group API: use a kernel ` +
        "with CONFIG_VFIO_DEVICE_CDEV=y, or with CONFIG_VFIO_CONTAINER=y (or CONFIG_IOMMUFD_VFIO_CONTAINER=y)",
    );
  } else if (!existsSync(container)) {
    problem(
      "access",
      "no /dev/vfio/vfio and no /dev/iommu: load VFIO (modprobe vfio-pci); the kernel needs CONFIG_VFIO_CONTAINER " +
        "or CONFIG_IOMMUFD with CONFIG_VFIO_DEVICE_CDEV",
      ["modprobe vfio-pci"],
    );
  } else {
    problem(
      "access",
      `no /dev/vfio/${group} although ${address} is bound to vfio-pci: udev did not create the group node ` +
        "(ls -l /dev/vfio; udevadm trigger --subsystem-match=vfio)",
      ["udevadm trigger --subsystem-match=vfio"],
    );
  }
  return undefined;
}

function processIdentity(): VfioHostIdentity {
  const uid = process.getuid?.() ?? 0;
  const gids = [process.getgid?.() ?? 0, ...(process.getgroups?.() ?? [])];
  return { uid, gids };
}

function canReadWrite(owner: NodeOwner, who: VfioHostIdentity): boolean {
  if (who.uid === 0) return true;
  if (owner.uid === who.uid) return (owner.mode & 0o600) === 0o600;
  if (who.gids.includes(owner.gid)) return (owner.mode & 0o060) === 0o060;
  return (owner.mode & 0o006) === 0o006;
}

/** `ls -l`'s mode column: "crw-rw----". */
export function modeString(mode: number): string {
  const type = (mode & 0o170000) === 0o020000 ? "c" : (mode & 0o170000) === 0o040000 ? "d" : "-";
  const bits = "rwxrwxrwx"
    .split("")
    .map((ch, i) => ((mode >> (8 - i)) & 1 ? ch : "-"))
    .join("");
  return type + bits;
}

/** The udev match that names a VFIO node, for a persistent permission rule. */
function udevMatch(hostPath: string): string {
  if (hostPath === "/dev/iommu") return 'KERNEL=="iommu"';
  if (hostPath.startsWith("/dev/vfio/devices/")) return 'SUBSYSTEM=="vfio-dev"';
  return 'SUBSYSTEM=="vfio"';
}

function checkPermissions(
  root: string,
  access: VfioAccessPath,
  who: VfioHostIdentity,
  ok: (name: VfioHostCheckName, line: string) => void,
  problem: Report,
): void {
  const nodes = access.kind === "iommufd" ? [access.iommu, access.device] : [access.container, access.groupNode];
  const hostPath = (p: string) => "/" + p.slice(join(root, "/").length);
  const user = userName(root, who.uid);
  const denied: string[] = [];
  const steps: string[] = [];
  const fix: string[] = [];
  for (const node of nodes) {
    const owner = nodeOwner(node);
    if (!owner || canReadWrite(owner, who)) continue;
    const path = hostPath(node);
    const ownerGroup = groupName(root, owner.gid);
    denied.push(`${path} (${modeString(owner.mode)} ${userName(root, owner.uid)}:${ownerGroup})`);
    if ((owner.mode & 0o060) === 0o060 && owner.gid !== 0) {
      fix.push(`usermod -aG ${ownerGroup} ${user}`);
      steps.push(`usermod -aG ${ownerGroup} ${user} (then log in again)`);
    } else {
      const rule = `${udevMatch(path)}, OWNER="${user}"`;
      fix.push(`chown ${user} ${path}`, `echo '${rule}' >> /etc/udev/rules.d/90-vfio.rules`);
      steps.push(`chown ${user} ${path} (until reboot; a udev rule ${rule} keeps it)`);
    }
  }
  if (denied.length === 0) {
    ok("permission", `${nodes.map(hostPath).join(" and ")} open read-write for ${user}`);
    return;
  }
  problem(
    "permission",
    `no read-write access for ${user} (uid ${who.uid}) to ${denied.join(" and ")}: as root, ${dedupe(steps).join("; ")}`,
    dedupe(fix),
  );
}

export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1 && value % 1024 === 0) {
    value /= 1024;
    unit++;
  }
  return `${value} ${units[unit]}`;
}

function memlockCheck(root: string, options: DiagnoseVfioHostOptions, ok: (n: VfioHostCheckName, l: string) => void, problem: Report): void {
  const ipcLock = options.ipcLock ?? hasIpcLock(readText(join(root, "proc/self/status")) ?? "");
  const limit = options.memlockLimit ?? parseMemlockLimit(readText(join(root, "proc/self/limits")) ?? "");
  const ram = options.guestRamBytes;
  if (ipcLock) {
    ok("memlock", "CAP_IPC_LOCK: pinning guest RAM for DMA is not limited by RLIMIT_MEMLOCK");
  } else if (limit === "unlimited") {
    ok("memlock", "RLIMIT_MEMLOCK is unlimited");
  } else if (limit === undefined) {
    ok("memlock", "RLIMIT_MEMLOCK could not be read; VFIO pins all guest RAM and needs a limit at least that large");
  } else if (ram === undefined) {
    ok("memlock", `RLIMIT_MEMLOCK is ${formatBytes(limit)}: VFIO pins all guest RAM, so guests up to that size`);
  } else if (limit >= ram) {
    ok("memlock", `RLIMIT_MEMLOCK ${formatBytes(limit)} covers ${formatBytes(ram)} of guest RAM`);
  } else {
    const fix = [
      "ulimit -l unlimited   # in the shell that starts vmm (raising the hard limit needs root)",
      "LimitMEMLOCK=infinity   # in a systemd unit",
      "<user> hard memlock unlimited / <user> soft memlock unlimited   # in /etc/security/limits.conf",
    ];
    problem(
      "memlock",
      `RLIMIT_MEMLOCK is ${formatBytes(limit)} but VFIO pins all ${formatBytes(ram)} of guest RAM for DMA: raise it ` +
        "(ulimit -l unlimited; LimitMEMLOCK=infinity in a systemd unit; memlock in /etc/security/limits.conf) " +
        "or give vmm CAP_IPC_LOCK",
      fix,
    );
  }
}
