import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigurationError } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { formatHostAddress, hostFunctionStatus, parseHostAddress, vfioHostStatus } from "../src/index.js";

describe("host PCI addresses", () => {
  it("parses the sysfs and lspci spellings and formats them back", () => {
    expect(parseHostAddress("0000:01:00.0")).toEqual({ segment: 0, bus: 1, device: 0, function: 0 });
    expect(parseHostAddress("0a:1f.7")).toEqual({ segment: 0, bus: 10, device: 31, function: 7 });
    expect(formatHostAddress(parseHostAddress("0001:ff:1f.3"))).toBe("0001:ff:1f.3");
  });

  it("refuses anything else with a clear error", () => {
    for (const bad of ["", "01:00", "01:20.0", "01:00.8", "0000:01:00.0.1", "../../etc"]) {
      expect(() => parseHostAddress(bad)).toThrowError(ConfigurationError);
    }
    expect(() => parseHostAddress("01:20.0")).toThrow(/not a host PCI address \(expected DDDD:BB:DD\.F/);
  });
});

describe("VFIO host status (fake /dev and /sys)", () => {
  const fakeRoot = () => mkdtempSync(join(tmpdir(), "vfio-root-"));

  it("says what is missing", () => {
    const root = fakeRoot();
    expect(vfioHostStatus(root)).toEqual({ ok: false, reason: expect.stringMatching(/no \/dev\/vfio\/vfio/) });
    mkdirSync(join(root, "dev/vfio"), { recursive: true });
    writeFileSync(join(root, "dev/vfio/vfio"), "");
    expect(vfioHostStatus(root)).toEqual({ ok: false, reason: expect.stringMatching(/no IOMMU groups/) });
  });

  it("lists IOMMU groups in numeric order and a function's group and driver", () => {
    const root = fakeRoot();
    mkdirSync(join(root, "dev/vfio"), { recursive: true });
    writeFileSync(join(root, "dev/vfio/vfio"), "");
    for (const g of ["10", "2", "1"]) mkdirSync(join(root, "sys/kernel/iommu_groups", g), { recursive: true });
    expect(vfioHostStatus(root)).toEqual({ ok: true, groups: ["1", "2", "10"] });
    const fn = join(root, "sys/bus/pci/devices/0000:01:00.0");
    mkdirSync(fn, { recursive: true });
    symlinkSync("../../../../kernel/iommu_groups/10", join(fn, "iommu_group"));
    symlinkSync("../../../../bus/pci/drivers/vfio-pci", join(fn, "driver"));
    expect(hostFunctionStatus(parseHostAddress("01:00.0"), root)).toEqual({ group: "10", driver: "vfio-pci" });
    expect(hostFunctionStatus(parseHostAddress("02:00.0"), root)).toEqual({ group: undefined, driver: undefined });
  });
});
