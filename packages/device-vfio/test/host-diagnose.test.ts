import { chmodSync, chownSync, statSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { diagnoseVfioHost, diagnosisLines, modeString, type VfioHostCheck } from "../src/kernel/diagnose.js";
import { hasIpcLock, parseMemlockLimit, parseReservedRegions } from "../src/kernel/sysfs.js";
import { vfioHostStatus } from "../src/host-status.js";
import { FakeHost, USER } from "./kernel-fake-host.js";

const A = "0000:01:00.0";

function problem(host: FakeHost, options: Parameters<typeof diagnoseVfioHost>[0] = {}): VfioHostCheck {
  const d = diagnoseVfioHost({ root: host.root, address: A, identity: USER, ...options });
  expect(d.ok).toBe(false);
  expect(d.access).toBeUndefined();
  return d.problem!;
}

describe("diagnoseVfioHost: one line per host problem (fake /sys, /dev, /proc)", () => {
  it("passes a host that is ready and says how the device will be opened", () => {
    const host = FakeHost.ready();
    const d = diagnoseVfioHost({ root: host.root, address: "01:00.0", identity: USER, guestRamBytes: 1 << 30 });
    expect(d.ok).toBe(true);
    expect(d.problem).toBeUndefined();
    expect(d.access).toEqual({ kind: "group", container: host.path("dev/vfio/vfio"), groupNode: host.path("dev/vfio/12"), group: "12" });
    expect(d.checks.map((c) => c.name)).toEqual(["function", "iommu", "driver", "group", "access", "permission", "memlock"]);
    expect(d.checks.every((c) => c.ok && c.fix === undefined)).toBe(true);
    expect(d.checks[0]!.line).toBe("0000:01:00.0 exists (10ec:8168)");
    expect(d.checks[1]!.line).toBe("IOMMU on: 1 groups; 0000:01:00.0 is in group 12");
    expect(d.checks[3]!.line).toBe("IOMMU group 12 is viable: 0000:01:00.0 (vfio-pci)");
  });

  it("a function that does not exist", () => {
    const host = FakeHost.ready();
    const p = problem(host, { address: "0000:05:00.0" });
    expect(p).toEqual({ name: "function", ok: false, line: "no PCI function 0000:05:00.0 on this host (lspci -D lists the functions there are)" });
  });

  it("no IOMMU: no groups at all, and a function outside every group", () => {
    const host = new FakeHost().driverLoaded("vfio-pci").fn(A, { driver: "vfio-pci" });
    const p = problem(host);
    expect(p.name).toBe("iommu");
    expect(p.line).toMatch(/^no IOMMU groups: .*intel_iommu=on \(Intel\) or amd_iommu=on \(AMD\)/);
    host.group("3");
    expect(problem(host).line).toMatch(/^0000:01:00\.0 is in no IOMMU group although the IOMMU is on \(1 groups\)/);
  });

  it("bound to another driver: names it and gives the exact rebind commands", () => {
    const host = new FakeHost().driverLoaded("vfio-pci").fn(A, { driver: "r8169", group: "12" }).groupNodes("12");
    const p = problem(host);
    const commands = [
      "echo vfio-pci > /sys/bus/pci/devices/0000:01:00.0/driver_override",
      "echo 0000:01:00.0 > /sys/bus/pci/devices/0000:01:00.0/driver/unbind",
      "echo 0000:01:00.0 > /sys/bus/pci/drivers_probe",
    ];
    expect(p).toEqual({
      name: "driver",
      ok: false,
      line: `0000:01:00.0 is bound to r8169, not vfio-pci; hand it to vfio-pci as root: ${commands.join("; ")}`,
      fix: commands,
    });
  });

  it("rebind commands load vfio-pci first when it is not loaded, and skip the unbind of an unbound function", () => {
    const host = new FakeHost().fn(A, { group: "12" });
    expect(problem(host).fix).toEqual([
      "modprobe vfio-pci",
      "echo vfio-pci > /sys/bus/pci/devices/0000:01:00.0/driver_override",
      "echo 0000:01:00.0 > /sys/bus/pci/drivers_probe",
    ]);
    expect(problem(host).line).toMatch(/^0000:01:00\.0 is bound to no driver, not vfio-pci; hand it to vfio-pci as root: modprobe vfio-pci; /);
  });

  it("a vendor variant of vfio-pci is as good as vfio-pci", () => {
    const host = new FakeHost().fn(A, { driver: "mlx5_vfio_pci", group: "12" }).groupNodes("12").memlock("unlimited");
    expect(diagnoseVfioHost({ root: host.root, address: A, identity: USER }).ok).toBe(true);
  });

  it("a group that is not viable names every device in the way and its driver; bridges and unbound devices are fine", () => {
    const host = FakeHost.ready()
      .fn("0000:01:00.1", { driver: "snd_hda_intel", group: "12" })
      .fn("0000:01:00.2", { driver: "xhci_hcd", group: "12" })
      .fn("0000:00:01.0", { driver: "pcieport", group: "12" })
      .fn("0000:01:00.3", { group: "12" })
      .fn("0000:01:00.4", { driver: "pci-stub", group: "12" });
    const p = problem(host);
    expect(p.name).toBe("group");
    expect(p.line).toMatch(
      /^IOMMU group 12 is not viable: 0000:01:00\.1 \(snd_hda_intel\), 0000:01:00\.2 \(xhci_hcd\) share it with 0000:01:00\.0 and must be bound to vfio-pci too \(or unbound\); as root: echo vfio-pci > \/sys\/bus\/pci\/devices\/0000:01:00\.1\/driver_override; /,
    );
    expect(p.fix).toContain("echo 0000:01:00.2 > /sys/bus/pci/devices/0000:01:00.2/driver/unbind");
    expect(p.fix!.filter((c) => c === "echo 0000:01:00.1 > /sys/bus/pci/drivers_probe")).toHaveLength(1);
    expect(p.line).not.toMatch(/pcieport|pci-stub|01:00\.3/);
  });

  it("prefers the iommufd cdev when the kernel exposes one", () => {
    const host = FakeHost.ready().iommufdNodes("vfio3");
    host.fn("0000:02:00.0", { driver: "vfio-pci", group: "13", cdev: "vfio3" }).groupNodes("13");
    const d = diagnoseVfioHost({ root: host.root, address: "0000:02:00.0", identity: USER });
    expect(d.ok).toBe(true);
    expect(d.access).toEqual({ kind: "iommufd", iommu: host.path("dev/iommu"), device: host.path("dev/vfio/devices/vfio3"), group: "13" });
    expect(d.checks.find((c) => c.name === "access")!.line).toBe("iommufd: /dev/vfio/devices/vfio3 with /dev/iommu");
  });

  it("iommufd without a cdev for the function falls back to the group API, and says why", () => {
    const host = FakeHost.ready().iommufdNodes();
    const d = diagnoseVfioHost({ root: host.root, address: A, identity: USER });
    expect(d.access?.kind).toBe("group");
    expect(d.checks.find((c) => c.name === "access")!.line).toBe(
      "iommufd is present but 0000:01:00.0 has no VFIO cdev (kernel without CONFIG_VFIO_DEVICE_CDEV); container/group API: /dev/vfio/vfio with /dev/vfio/12",
    );
  });

  it("iommufd present but the device is not exposed as a cdev and there is no container: a problem naming the kernel options", () => {
    const host = new FakeHost().fn(A, { driver: "vfio-pci", group: "12" }).iommufdNodes().memlock("unlimited");
    expect(problem(host).line).toBe(
      "iommufd is present (/dev/iommu) but 0000:01:00.0 is not exposed as a VFIO cdev and there is no /dev/vfio/vfio for the container/group API: " +
        "use a kernel with CONFIG_VFIO_DEVICE_CDEV=y, or with CONFIG_VFIO_CONTAINER=y (or CONFIG_IOMMUFD_VFIO_CONTAINER=y)",
    );
  });

  it("a cdev in sysfs without its /dev node: the mknod that creates it", () => {
    const host = new FakeHost().fn(A, { driver: "vfio-pci", group: "12", cdev: "vfio0" }).iommufdNodes();
    const p = problem(host);
    expect(p.line).toBe(
      "sysfs has VFIO device vfio0 for 0000:01:00.0 but /dev/vfio/devices/vfio0 is missing (udev did not create it): as root, mknod /dev/vfio/devices/vfio0 c 511 0",
    );
  });

  it("no VFIO nodes at all, and a group node udev did not create", () => {
    const host = new FakeHost().fn(A, { driver: "vfio-pci", group: "12" });
    expect(problem(host).line).toMatch(/^no \/dev\/vfio\/vfio and no \/dev\/iommu: load VFIO \(modprobe vfio-pci\)/);
    host.file("dev/vfio/vfio");
    expect(problem(host).line).toMatch(/^no \/dev\/vfio\/12 although 0000:01:00\.0 is bound to vfio-pci: udev did not create the group node/);
  });

  it("no permission on the group node: whose it is, its mode, and how to fix it", () => {
    const host = FakeHost.ready().file("dev/vfio/12", "", 0o600).file("etc/passwd", "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
    const p = problem(host);
    expect(p.name).toBe("permission");
    expect(p.line).toBe(
      'no read-write access for alice (uid 1000) to /dev/vfio/12 (-rw------- root:root): as root, chown alice /dev/vfio/12 (until reboot; a udev rule SUBSYSTEM=="vfio", OWNER="alice" keeps it)',
    );
    expect(p.fix).toEqual(["chown alice /dev/vfio/12", `echo 'SUBSYSTEM=="vfio", OWNER="alice"' >> /etc/udev/rules.d/90-vfio.rules`]);
    expect(diagnoseVfioHost({ root: host.root, address: A, identity: { uid: 0, gids: [0] } }).ok).toBe(true);
  });

  it("nodes of the iommufd path: each one named; a node its group may open: join that group", () => {
    const host = FakeHost.ready().iommufdNodes(undefined, 0o660).file("etc/group", "root:x:0:\n");
    host.fn("0000:02:00.0", { driver: "vfio-pci", group: "13", cdev: "vfio1" }).file("dev/vfio/devices/vfio1", "", 0o600);
    const p = diagnoseVfioHost({ root: host.root, address: "0000:02:00.0", identity: USER }).problem!;
    const owner = `${process.getuid!() === 0 ? "root" : process.getuid!()}`;
    const group = `${process.getgid!() === 0 ? "root" : process.getgid!()}`;
    expect(p.line).toBe(
      `no read-write access for 1000 (uid 1000) to /dev/iommu (-rw-rw---- ${owner}:${group}) and /dev/vfio/devices/vfio1 (-rw------- ${owner}:${group}): ` +
        (process.getgid!() === 0 ? 'as root, chown 1000 /dev/iommu (until reboot; a udev rule KERNEL=="iommu", OWNER="1000" keeps it); ' : `as root, usermod -aG ${group} 1000 (then log in again); `) +
        'chown 1000 /dev/vfio/devices/vfio1 (until reboot; a udev rule SUBSYSTEM=="vfio-dev", OWNER="1000" keeps it)',
    );
  });

  it("a node whose group may read and write it: the fix is joining that group", () => {
    const host = FakeHost.ready().file("etc/group", "root:x:0:\nkvm:x:1234:\n");
    const node = host.path("dev/vfio/12");
    chmodSync(node, 0o660);
    if (process.getuid!() === 0) chownSync(node, 0, 1234);
    const gid = statSync(node).gid;
    if (gid === 0) return; // not root and in group 0: the rule (never "join root's group") has nothing to show here
    const p = problem(host);
    const name = gid === 1234 ? "kvm" : String(gid);
    expect(p.fix).toEqual([`usermod -aG ${name} 1000`]);
    expect(p.line).toMatch(new RegExp(`^no read-write access for 1000 \\(uid 1000\\) to /dev/vfio/12 \\(-rw-rw---- \\S+:${name}\\): as root, usermod -aG ${name} 1000 \\(then log in again\\)$`));
    expect(diagnoseVfioHost({ root: host.root, address: A, identity: { uid: 1000, gids: [gid] } }).ok).toBe(true);
  });

  it("memlock below guest RAM, from /proc/self/limits, and what lifts it", () => {
    const host = FakeHost.ready().memlock("8388608");
    const p = problem(host, { guestRamBytes: 2 * 1024 ** 3 });
    expect(p.name).toBe("memlock");
    expect(p.line).toBe(
      "RLIMIT_MEMLOCK is 8 MiB but VFIO pins all 2 GiB of guest RAM for DMA: raise it (ulimit -l unlimited; LimitMEMLOCK=infinity in a systemd unit; " +
        "memlock in /etc/security/limits.conf) or give vmm CAP_IPC_LOCK",
    );
    expect(diagnoseVfioHost({ root: host.root, address: A, identity: USER, guestRamBytes: 8 << 20 }).ok).toBe(true);
    expect(diagnoseVfioHost({ root: host.root, address: A, identity: USER, guestRamBytes: 1 << 30, memlockLimit: "unlimited" }).ok).toBe(true);
    expect(diagnoseVfioHost({ root: host.root, address: A, identity: USER, guestRamBytes: 1 << 30, memlockLimit: 1 << 20 }).problem!.line).toMatch(
      /^RLIMIT_MEMLOCK is 1 MiB but VFIO pins all 1 GiB/,
    );
    host.memlock("65536", "0000000000004000");
    const withCap = diagnoseVfioHost({ root: host.root, address: A, identity: USER, guestRamBytes: 1 << 30 });
    expect(withCap.ok).toBe(true);
    expect(withCap.checks.at(-1)!.line).toMatch(/^CAP_IPC_LOCK/);
  });

  it("without an address: the host-wide checks only", () => {
    const host = new FakeHost().group("1");
    const d = diagnoseVfioHost({ root: host.root, memlockLimit: 65536 });
    expect(d.checks.map((c) => [c.name, c.ok])).toEqual([["iommu", true], ["vfio-pci", false], ["memlock", true]]);
    expect(d.problem!.line).toBe("the vfio-pci driver is not loaded: modprobe vfio-pci (as root)");
    expect(d.checks[2]!.line).toBe("RLIMIT_MEMLOCK is 64 KiB: VFIO pins all guest RAM, so guests up to that size");
    host.driverLoaded("vfio-pci");
    expect(diagnoseVfioHost({ root: host.root, memlockLimit: "unlimited" }).ok).toBe(true);
  });

  it("printable lines: ok/FAIL with the fix commands under the problem", () => {
    const host = new FakeHost().driverLoaded("vfio-pci").fn(A, { driver: "r8169", group: "12" }).memlock("unlimited");
    const lines = diagnosisLines(diagnoseVfioHost({ root: host.root, address: A, identity: USER }));
    expect(lines[0]).toBe("ok   function: 0000:01:00.0 exists (10ec:8168)");
    expect(lines[2]).toMatch(/^FAIL driver: 0000:01:00\.0 is bound to r8169/);
    expect(lines[3]).toBe("       echo vfio-pci > /sys/bus/pci/devices/0000:01:00.0/driver_override");
    expect(lines.at(-1)).toBe("ok   memlock: RLIMIT_MEMLOCK is unlimited");
  });
});

describe("host text parsers", () => {
  it("reads RLIMIT_MEMLOCK and CAP_IPC_LOCK", () => {
    expect(parseMemlockLimit("Max locked memory         65536                65536                bytes\n")).toBe(65536);
    expect(parseMemlockLimit("Max locked memory         unlimited            unlimited            bytes\n")).toBe("unlimited");
    expect(parseMemlockLimit("Max open files 1 1 files\n")).toBeUndefined();
    expect(hasIpcLock("CapEff:\t000001ffffffffff\n")).toBe(true);
    expect(hasIpcLock("CapEff:\t0000000000000000\n")).toBe(false);
    expect(hasIpcLock("")).toBe(false);
  });

  it("reads reserved_regions, end inclusive, skipping lines that do not parse", () => {
    expect(parseReservedRegions("0x00000000fee00000 0x00000000feefffff msi\n0x000000fd00000000 0x000000ffffffffff reserved\ngarbage\n")).toEqual([
      { start: 0xfee00000, end: 0xfeefffff, type: "msi" },
      { start: 0xfd00000000, end: 0xffffffffff, type: "reserved" },
    ]);
    expect(parseReservedRegions("")).toEqual([]);
  });

  it("formats modes as ls does", () => {
    expect(modeString(0o020660)).toBe("crw-rw----");
    expect(modeString(0o100600)).toBe("-rw-------");
  });
});

describe("vfioHostStatus", () => {
  it("accepts an iommufd-only host (/dev/iommu without /dev/vfio/vfio)", () => {
    const host = new FakeHost().group("4").iommufdNodes();
    expect(vfioHostStatus(host.root)).toEqual({ ok: true, groups: ["4"] });
  });
});
