// Kernel VFIO against a real device: runs only where VMM_VFIO_TEST_DEVICE names a host function bound to vfio-pci
// (VMM_VFIO_TEST_DEVICE=0000:01:00.0), with the IOMMU on and the device nodes open to this user. The device is
// reset and gets a DMA mapping; nothing else is written to it.
import { closeSync, ftruncateSync, readFileSync } from "node:fs";
import { memfdCreate, mapFd } from "@vmm/host-io";
import { describe, expect, it } from "vitest";
import { VfioDeviceFlags, VfioRegion, VfioRegionFlags } from "../src/backend/backend.js";
import { diagnoseVfioHost, diagnosisLines } from "../src/kernel/diagnose.js";
import { KernelVfioDevice } from "../src/kernel/kernel-device.js";

const address = process.env.VMM_VFIO_TEST_DEVICE;
if (!address) {
  const rule = "!".repeat(78);
  console.warn(
    `\n${rule}\n!! @vmm/device-vfio: kernel VFIO device test SKIPPED: no VMM_VFIO_TEST_DEVICE\n` +
      `!! (set it to a host function bound to vfio-pci, e.g. VMM_VFIO_TEST_DEVICE=0000:01:00.0)\n${rule}\n`,
  );
}

const sysfs = (name: string) => readFileSync(`/sys/bus/pci/devices/${address}/${name}`, "utf8").trim();
const GUEST_RAM = 2 << 20;

describe.skipIf(!address)(`kernel VFIO on ${address}`, () => {
  it("the host diagnosis passes", () => {
    const diagnosis = diagnoseVfioHost({ address: address!, guestRamBytes: GUEST_RAM });
    console.log(diagnosisLines(diagnosis).join("\n"));
    expect(diagnosis.problem).toBeUndefined();
  });

  it("opens the device and reads the config header sysfs shows", () => {
    const dev = KernelVfioDevice.open(address!, { guestRamBytes: GUEST_RAM });
    try {
      const info = dev.deviceInfo();
      expect(info.flags & VfioDeviceFlags.PCI).toBe(VfioDeviceFlags.PCI);
      expect(info.numRegions).toBeGreaterThan(VfioRegion.CONFIG);
      const config = dev.read(VfioRegion.CONFIG, 0, 64);
      const view = new DataView(config.buffer);
      expect(view.getUint16(0, true)).toBe(Number(sysfs("vendor")));
      expect(view.getUint16(2, true)).toBe(Number(sysfs("device")));
      expect(view.getUint32(8, true) >>> 8).toBe(Number(sysfs("class")));
      // BAR sizes as sysfs' resource file gives them (start end flags per line, BARs 0-5 then the ROM).
      const resources = sysfs("resource").split("\n").map((line) => line.split(/\s+/).map((n) => BigInt(n)));
      for (let bar = VfioRegion.BAR0; bar <= VfioRegion.ROM; bar++) {
        const [start, end] = resources[bar]!;
        const expected = end! > start! ? Number(end! - start! + 1n) : 0;
        const region = dev.regionInfo(bar);
        if (region.size > 0 || expected > 0) expect(region.size, `region ${bar}`).toBe(expected);
        for (const area of region.mmap?.areas ?? []) expect(area.offset + area.size).toBeLessThanOrEqual(region.size);
      }
      expect(dev.regionInfo(VfioRegion.CONFIG).flags & VfioRegionFlags.READ).toBe(VfioRegionFlags.READ);
      for (let irq = 0; irq < Math.min(info.numIrqs, 3); irq++) expect(dev.irqInfo(irq).index).toBe(irq);
      console.log(`${dev.name}: ${dev.kind}, ${info.numRegions} regions, ${info.numIrqs} IRQ indexes, reserved ${JSON.stringify(dev.reservedRanges())}`);
    } finally {
      dev.close();
    }
  });

  it("maps memfd-backed memory for DMA outside the reserved ranges, unmaps it, and resets when it can", () => {
    const dev = KernelVfioDevice.open(address!, { guestRamBytes: GUEST_RAM });
    const fd = memfdCreate("vfio-test-ram");
    try {
      ftruncateSync(fd, GUEST_RAM);
      const bytes = mapFd(fd, 0, GUEST_RAM, { writable: true });
      const reserved = dev.reservedRanges();
      let iova = 0x1000_0000;
      while (reserved.some((r) => iova <= r.end && r.start < iova + GUEST_RAM)) iova += 0x1000_0000;
      dev.dmaMap({ iova, size: GUEST_RAM, fd, fileOffset: 0, bytes, readable: true, writable: true });
      dev.dmaUnmap(iova, GUEST_RAM);
      expect(dev.reset()).toBe((dev.deviceInfo().flags & VfioDeviceFlags.RESET) !== 0);
    } finally {
      closeSync(fd);
      dev.close();
    }
  });
});
