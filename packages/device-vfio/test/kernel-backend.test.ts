import { describe, expect, it } from "vitest";
import { VfioBackendLostError, VfioDeviceFlags, VfioRegion, VfioRegionFlags } from "../src/backend/backend.js";
import { VfioHostError } from "../src/kernel/diagnose.js";
import { KernelVfioError } from "../src/kernel/errors.js";
import { KernelVfioDevice } from "../src/kernel/kernel-device.js";
import { FakeHost, USER } from "./kernel-fake-host.js";
import { FakeVfioKernel, type FakeDevice } from "./kernel-fake-vfio.js";

const A = "0000:01:00.0";
const { READ, WRITE, MMAP } = VfioRegionFlags;

/** An RTL8168-like function: I/O BAR0, MMIO BAR2, MSI-X table in BAR4 (sparse), config space, INTx/MSI/MSI-X. */
function device(flags = VfioDeviceFlags.PCI | VfioDeviceFlags.RESET): FakeDevice {
  const none = { size: 0, flags: 0 };
  return {
    address: A,
    flags,
    regions: [
      { size: 0x100, flags: READ | WRITE },
      none,
      { size: 0x1000, flags: READ | WRITE | MMAP },
      none,
      { size: 0x4000, flags: READ | WRITE | MMAP, sparse: [{ offset: 0x1000, size: 0x3000 }, { offset: 0x800, size: 0 }] },
      none,
      none,
      { size: 0x1000, flags: READ | WRITE },
      { size: 0x20, flags: READ | WRITE, type: { type: 0x8000_10ec, subtype: 1 } },
    ],
    irqs: [
      { flags: 0x7, count: 1 },
      { flags: 0x9, count: 1 },
      { flags: 0x9, count: 4 },
    ],
  };
}

function groupHost() {
  const host = FakeHost.ready();
  const kernel = new FakeVfioKernel({ [host.path("dev/vfio/vfio")]: "container", [host.path("dev/vfio/12")]: "group" }, device());
  return { host, kernel };
}

function iommufdHost(dev = device()) {
  const host = FakeHost.ready().iommufdNodes("vfio0");
  host.fn("0000:02:00.0", { driver: "vfio-pci", group: "13", cdev: "vfio0" });
  const kernel = new FakeVfioKernel({ [host.path("dev/iommu")]: "iommu", [host.path("dev/vfio/devices/vfio0")]: "cdev" }, { ...dev, address: "0000:02:00.0" });
  return { host, kernel };
}

const open = (host: FakeHost, kernel: FakeVfioKernel, address = A) =>
  KernelVfioDevice.open(address, { root: host.root, syscalls: kernel, identity: USER });

describe("KernelVfioDevice over a fake kernel", () => {
  it("opens through the container/group API in the kernel's order", () => {
    const { host, kernel } = groupHost();
    const dev = open(host, kernel);
    expect(kernel.log).toEqual([
      "open /dev/vfio/vfio",
      "container GET_API_VERSION(0)",
      "container CHECK_EXTENSION(3)",
      "open /dev/vfio/12",
      "group GROUP_GET_STATUS",
      "group GROUP_SET_CONTAINER(40)",
      "container SET_IOMMU(3)",
      `group GROUP_GET_DEVICE_FD("${A}\\u0000")`,
      "device DEVICE_GET_INFO",
    ]);
    expect(dev.name).toBe(`vfio ${A}`);
    expect(dev.kind).toBe("group");
    expect(dev.kvmFile).toBe(41);
    expect(dev.deviceInfo()).toEqual({ flags: VfioDeviceFlags.PCI | VfioDeviceFlags.RESET, numRegions: 9, numIrqs: 3 });
  });

  it("opens through iommufd where the kernel exposes a cdev: bind, IOAS, attach", () => {
    const { host, kernel } = iommufdHost();
    const dev = open(host, kernel, "02:00.0");
    expect(kernel.log).toEqual([
      "open /dev/vfio/devices/vfio0",
      "open /dev/iommu",
      "cdev DEVICE_BIND_IOMMUFD(41)",
      "iommu IOAS_ALLOC",
      "cdev DEVICE_ATTACH_IOMMUFD_PT(7)",
      "device DEVICE_GET_INFO",
    ]);
    expect(dev.kind).toBe("iommufd");
    expect(dev.kvmFile).toBe(40);
  });

  it("a host problem fails the open with the diagnosis line before any system call", () => {
    const { host, kernel } = groupHost();
    host.fn("0000:01:00.1", { driver: "snd_hda_intel", group: "12" });
    expect(() => open(host, kernel)).toThrowError(VfioHostError);
    expect(() => open(host, kernel)).toThrow(/^IOMMU group 12 is not viable: 0000:01:00\.1 \(snd_hda_intel\) shares it/);
    expect(kernel.log).toEqual([]);
  });

  it("a group the kernel calls not viable: one line, and every fd opened so far closed", () => {
    const { host, kernel } = groupHost();
    kernel.viable = false;
    expect(() => open(host, kernel)).toThrow(`vfio ${A}: IOMMU group 12 is not viable (a device in it is in use by a host driver)`);
    expect(kernel.openFds()).toEqual([]);
  });

  it("a failing call names the call and what its errno means, and leaks nothing", () => {
    const { host, kernel } = groupHost();
    kernel.fail("GROUP_GET_DEVICE_FD", "EBUSY");
    const error = (() => {
      try {
        open(host, kernel);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(KernelVfioError);
    expect((error as Error).message).toBe(
      `vfio ${A}: VFIO_GROUP_GET_DEVICE_FD failed (EBUSY): the device is in use: another VM or process has it open`,
    );
    expect(kernel.openFds()).toEqual([]);
    const cdev = iommufdHost();
    cdev.kernel.fail("open /dev/iommu", "EACCES");
    expect(() => open(cdev.host, cdev.kernel, "02:00.0")).toThrow(/open .*\/dev\/iommu failed \(EACCES\): no permission \(run vmm doctor vfio\)/);
    expect(cdev.kernel.openFds()).toEqual([]);
  });

  it("region info: a plain BAR maps whole, a sparse BAR grows argsz for its capabilities, a trapped region has no mmap", () => {
    const { host, kernel } = groupHost();
    const dev = open(host, kernel);
    expect(dev.regionInfo(VfioRegion.BAR2)).toEqual({
      index: 2,
      flags: READ | WRITE | MMAP,
      size: 0x1000,
      mmap: { fd: 42, offset: 2 * 2 ** 40, areas: [{ offset: 0, size: 0x1000 }] },
    });
    kernel.log.length = 0;
    expect(dev.regionInfo(VfioRegion.BAR4)).toEqual({
      index: 4,
      flags: READ | WRITE | MMAP | VfioRegionFlags.CAPS,
      size: 0x4000,
      mmap: { fd: 42, offset: 4 * 2 ** 40, areas: [{ offset: 0x1000, size: 0x3000 }] },
    });
    expect(kernel.log).toEqual(["device DEVICE_GET_REGION_INFO", "device DEVICE_GET_REGION_INFO"]);
    expect(dev.regionInfo(VfioRegion.CONFIG)).toEqual({ index: 7, flags: READ | WRITE, size: 0x1000 });
    expect(dev.regionInfo(VfioRegion.VGA)).toEqual({ index: 8, flags: READ | WRITE | VfioRegionFlags.CAPS, size: 0x20, type: { type: 0x8000_10ec, subtype: 1 } });
    expect(dev.regionInfo(VfioRegion.BAR1)).toEqual({ index: 1, flags: 0, size: 0 });
    kernel.log.length = 0;
    dev.regionInfo(VfioRegion.BAR4);
    expect(kernel.log).toEqual([]); // cached
    expect(() => dev.regionInfo(9)).toThrow(`vfio ${A}: region index 9 does not exist (the device has 9)`);
  });

  it("reads and writes regions with pread/pwrite at the region's offset, looping over short transfers", () => {
    const { host, kernel } = groupHost();
    const dev = open(host, kernel);
    kernel.memory[7]!.set([0xec, 0x10, 0x68, 0x81], 0);
    kernel.chunk = 3;
    kernel.log.length = 0;
    expect([...dev.read(VfioRegion.CONFIG, 0, 4)]).toEqual([0xec, 0x10, 0x68, 0x81]);
    expect(kernel.log.filter((l) => l.startsWith("pread"))).toEqual(["pread region 7 +0x0 3", "pread region 7 +0x3 1"]);
    dev.write(VfioRegion.BAR2, 0x70, Uint8Array.of(1, 2, 3, 4, 5));
    expect([...kernel.memory[2]!.subarray(0x70, 0x75)]).toEqual([1, 2, 3, 4, 5]);
    expect([...dev.read(VfioRegion.BAR2, 0x72, 2)]).toEqual([3, 4]);
  });

  it("refuses accesses outside a region, or that the region does not allow, without touching the device", () => {
    const { host, kernel } = groupHost();
    const dev = open(host, kernel);
    kernel.log.length = 0;
    expect(() => dev.read(VfioRegion.CONFIG, 0xffe, 4)).toThrow(`vfio ${A}: 4 bytes at 0xffe lie outside region 7 (0x1000 bytes)`);
    expect(() => dev.read(VfioRegion.CONFIG, -1, 1)).toThrow(KernelVfioError);
    expect(() => dev.write(VfioRegion.BAR1, 0, Uint8Array.of(1))).toThrow(`vfio ${A}: region 1 cannot be written`);
    expect(kernel.log.filter((l) => l.startsWith("p"))).toEqual([]);
    kernel.fail("pread", "EIO");
    expect(() => dev.read(VfioRegion.BAR0, 0x10, 2)).toThrow(`vfio ${A}: reading region 0 at 0x10 (2 bytes) failed (EIO)`);
  });

  it("IRQ info and every kind of SET_IRQS, with the eventfds after the structure", () => {
    const { host, kernel } = groupHost();
    const dev = open(host, kernel);
    expect(dev.irqInfo(2)).toEqual({ index: 2, flags: 0x9, count: 4 });
    dev.setIrqs({ action: "trigger", index: 2, start: 1, fds: [50, -1, 52] });
    dev.setIrqs({ action: "trigger-disable", index: 2 });
    dev.setIrqs({ action: "unmask-fd", index: 0, fd: 60 });
    dev.setIrqs({ action: "mask", index: 0, start: 0, count: 1 });
    dev.setIrqs({ action: "unmask", index: 0, start: 0, count: 1 });
    expect(kernel.irqSets).toEqual([
      { flags: 0x04 | 0x20, index: 2, start: 1, count: 3, fds: [50, -1, 52] },
      { flags: 0x01 | 0x20, index: 2, start: 0, count: 0, fds: [] },
      { flags: 0x04 | 0x10, index: 0, start: 0, count: 1, fds: [60] },
      { flags: 0x01 | 0x08, index: 0, start: 0, count: 1, fds: [] },
      { flags: 0x01 | 0x10, index: 0, start: 0, count: 1, fds: [] },
    ]);
    expect(() => dev.setIrqs({ action: "trigger-disable", index: 3 })).toThrow(`vfio ${A}: IRQ index 3 does not exist (the device has 3)`);
    expect(() => dev.irqInfo(-1)).toThrow(KernelVfioError);
  });

  it("resets only a device that says it can be reset", () => {
    const { host, kernel } = groupHost();
    expect(open(host, kernel).reset()).toBe(true);
    expect(kernel.resets).toBe(1);
    const plain = new FakeVfioKernel({ [host.path("dev/vfio/vfio")]: "container", [host.path("dev/vfio/12")]: "group" }, device(VfioDeviceFlags.PCI));
    expect(open(host, plain).reset()).toBe(false);
    expect(plain.resets).toBe(0);
    expect(plain.log.filter((l) => l.includes("RESET"))).toEqual([]);
  });

  it("maps guest RAM for DMA by its process address (type1), and unmaps it", () => {
    const { host, kernel } = groupHost();
    const dev = open(host, kernel);
    const ram = new Uint8Array(new ArrayBuffer(0x30000), 0x10000, 0x20000);
    dev.dmaMap({ iova: 0x100000, size: 0x20000, fd: -1, fileOffset: 0, bytes: ram, readable: true, writable: true });
    dev.dmaMap({ iova: 0x200000, size: 0x1000, fd: -1, fileOffset: 0, bytes: ram.subarray(0, 0x1000), readable: true, writable: false });
    expect(kernel.dmaMaps).toEqual([
      { iova: 0x100000, size: 0x20000, vaddr: 0x7f00_0001_0000n, flags: 3, via: "type1" },
      { iova: 0x200000, size: 0x1000, vaddr: 0x7f00_0001_0000n, flags: 1, via: "type1" },
    ]);
    expect(() => dev.dmaMap({ iova: 0x100000, size: 0x1000, fd: -1, fileOffset: 0, bytes: ram, readable: true, writable: true })).toThrow(
      /VFIO_IOMMU_MAP_DMA iova 0x100000 size 0x1000 failed \(EEXIST\): that I\/O address range is already mapped/,
    );
    dev.dmaUnmap(0x100000, 0x20000);
    expect(kernel.dmaMaps.map((m) => m.iova)).toEqual([0x200000]);
    expect(() => dev.dmaUnmap(0x300000, 0x1000)).toThrow(`vfio ${A}: VFIO_IOMMU_UNMAP_DMA iova 0x300000 size 0x1000 unmapped 0x0 bytes`);
    kernel.fail("IOMMU_MAP_DMA", "ENOMEM");
    expect(() => dev.dmaMap({ iova: 0x400000, size: 0x1000, fd: -1, fileOffset: 0, bytes: ram, readable: true, writable: true })).toThrow(
      /failed \(ENOMEM\): pinning guest RAM exceeded RLIMIT_MEMLOCK/,
    );
    expect(() => dev.dmaMap({ iova: 0x500000, size: 0x40000, fd: -1, fileOffset: 0, bytes: ram, readable: true, writable: true })).toThrow(
      /claims 0x40000 bytes but its memory holds 0x20000/,
    );
  });

  it("maps guest RAM into the IOAS at a fixed IOVA (iommufd)", () => {
    const { host, kernel } = iommufdHost();
    const dev = open(host, kernel, "02:00.0");
    const ram = new Uint8Array(0x2000);
    dev.dmaMap({ iova: 0, size: 0x2000, fd: -1, fileOffset: 0, bytes: ram, readable: true, writable: true });
    expect(kernel.dmaMaps).toEqual([{ iova: 0, size: 0x2000, vaddr: 0x7f00_0000_0000n, flags: 1 | 2 | 4, via: "iommufd" }]);
    dev.dmaUnmap(0, 0x2000);
    expect(kernel.dmaMaps).toEqual([]);
    expect(() => dev.dmaUnmap(0, 0x2000)).toThrow(/IOMMU_IOAS_UNMAP iova 0x0 size 0x2000 failed \(ENOENT\)/);
  });

  it("reserved ranges come from the group's reserved_regions", () => {
    const { host, kernel } = groupHost();
    host.file("sys/kernel/iommu_groups/12/reserved_regions", "0x00000000fee00000 0x00000000feefffff msi\n");
    expect(open(host, kernel).reservedRanges()).toEqual([{ start: 0xfee00000, end: 0xfeefffff, type: "msi" }]);
  });

  it("close closes the device before the group and the container, once; later calls are refused", () => {
    const { host, kernel } = groupHost();
    const dev = open(host, kernel);
    dev.close();
    dev.close();
    expect(kernel.closed).toEqual([42, 41, 40]);
    expect(kernel.openFds()).toEqual([]);
    expect(() => dev.read(VfioRegion.CONFIG, 0, 4)).toThrow(`vfio ${A} is closed`);
    const cdev = iommufdHost();
    const dev2 = open(cdev.host, cdev.kernel, "02:00.0");
    dev2.close();
    expect(cdev.kernel.closed).toEqual([40, 41]);
  });

  it("a device that is gone (ENODEV) is lost for good: onLost hears it once, every later call says so", () => {
    const { host, kernel } = groupHost();
    const dev = open(host, kernel);
    const reasons: string[] = [];
    dev.onLost((r) => reasons.push(r));
    kernel.fail("pread", "ENODEV");
    expect(() => dev.read(VfioRegion.CONFIG, 0, 4)).toThrowError(VfioBackendLostError);
    expect(reasons).toEqual([`vfio ${A}: reading region 7 at 0x0 (4 bytes) failed (ENODEV): the device is gone (unplugged, or unbound from vfio-pci)`]);
    expect(() => dev.irqInfo(0)).toThrowError(VfioBackendLostError);
    expect(reasons).toHaveLength(1);
    dev.close();
  });
});
