// A fake host tree (/sys, /dev, /proc, /etc under a temporary root) laid out as Linux lays it out, for the host
// diagnosis and the kernel VFIO backend tests.
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export interface FakeFunction {
  /** The bound driver's name; none when absent. */
  driver?: string;
  group?: string;
  ids?: string;
  /** "vfio0": the function's VFIO cdev in sysfs (vfio-dev/vfio0) with its device number. */
  cdev?: string;
}

export class FakeHost {
  readonly root = mkdtempSync(join(tmpdir(), "vfio-host-"));

  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  file(relative: string, text = "", mode = 0o666): this {
    mkdirSync(dirname(this.path(relative)), { recursive: true });
    writeFileSync(this.path(relative), text);
    chmodSync(this.path(relative), mode);
    return this;
  }

  driverLoaded(name: string): this {
    mkdirSync(this.path("sys/bus/pci/drivers", name), { recursive: true });
    return this;
  }

  group(group: string): this {
    mkdirSync(this.path("sys/kernel/iommu_groups", group, "devices"), { recursive: true });
    return this;
  }

  /** A PCI function, linked into its group's devices/ as sysfs does, with its driver and cdev. */
  fn(address: string, f: FakeFunction = {}): this {
    const dir = this.path("sys/bus/pci/devices", address);
    mkdirSync(dir, { recursive: true });
    const [vendor, device] = (f.ids ?? "10ec:8168").split(":");
    writeFileSync(join(dir, "vendor"), `0x${vendor}\n`);
    writeFileSync(join(dir, "device"), `0x${device}\n`);
    if (f.driver) {
      this.driverLoaded(f.driver);
      symlinkSync(`../../../../bus/pci/drivers/${f.driver}`, join(dir, "driver"));
    }
    if (f.group) {
      this.group(f.group);
      symlinkSync(`../../../../kernel/iommu_groups/${f.group}`, join(dir, "iommu_group"));
      symlinkSync(`../../../../bus/pci/devices/${address}`, this.path("sys/kernel/iommu_groups", f.group, "devices", address));
    }
    if (f.cdev) {
      mkdirSync(join(dir, "vfio-dev", f.cdev), { recursive: true });
      writeFileSync(join(dir, "vfio-dev", f.cdev, "dev"), `511:${f.cdev.slice(4)}\n`);
    }
    return this;
  }

  /** The container/group API's nodes: /dev/vfio/vfio and /dev/vfio/GROUP. */
  groupNodes(group: string, mode = 0o666): this {
    return this.file("dev/vfio/vfio", "", 0o666).file(`dev/vfio/${group}`, "", mode);
  }

  /** iommufd's /dev/iommu, and the cdev node when named. */
  iommufdNodes(cdev?: string, mode = 0o666): this {
    this.file("dev/iommu", "", mode);
    return cdev ? this.file(`dev/vfio/devices/${cdev}`, "", mode) : this;
  }

  memlock(soft: string, capEff = "0000000000000000"): this {
    this.file(
      "proc/self/limits",
      "Limit                     Soft Limit           Hard Limit           Units     \n" +
        "Max open files            1024                 524288               files     \n" +
        `Max locked memory         ${soft}              ${soft}              bytes     \n`,
    );
    return this.file("proc/self/status", `Name:\tvmm\nCapInh:\t0000000000000000\nCapEff:\t${capEff}\n`);
  }

  /** A host ready for passthrough of `address` in group 12 through the container/group API. */
  static ready(address = "0000:01:00.0"): FakeHost {
    return new FakeHost()
      .driverLoaded("vfio-pci")
      .fn(address, { driver: "vfio-pci", group: "12" })
      .groupNodes("12")
      .memlock("unlimited");
  }
}

/** Someone without privileges, as the permission checks see them. */
export const USER = { uid: 1000, gids: [1000] } as const;
