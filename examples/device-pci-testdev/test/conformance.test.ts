/**
 * The plugin's contract, checked with @vmm/plugin-testkit: what `register` binds and its option schema, the
 * config space of the device it creates (on a real PCI bus), and a guest program that exercises it under /dev/kvm.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { assertDeviceReport, checkDevice, checkPlugin, kvmAvailable, runGuestProgram } from "@vmm/plugin-testkit";
import { kvmTestGate } from "@vmm/test-support";
import { describe, expect, it } from "vitest";
import * as pluginModule from "../src/index.js";
import { PciTestDevice } from "../src/index.js";

const guestSource = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../guest/pci-testdev.c");
const gate = kvmTestGate("@x/device-pci-testdev", { what: "the plugin-testkit guest run", check: kvmAvailable });

describe("@x/device-pci-testdev conforms to the plugin contract", () => {
  it("registers the pci-testdev device type, with a valid option schema, and nothing else", async () => {
    const report = await checkPlugin(pluginModule);
    expect(report.deviceTypes.map((t) => t.type)).toEqual(["pci-testdev"]);
    expect(Object.keys(report.deviceTypes[0]!.options)).toEqual(["id", "vectors"]);
    expect(report.quirks).toEqual([]);
  });

  it("the device its type creates follows the config-space rules, for the smallest and largest vector counts", async () => {
    const { deviceTypes, container } = await checkPlugin(pluginModule);
    for (const vectors of [1, 4, 64]) {
      const device = await deviceTypes[0]!.create({ container, name: `pci-testdev${vectors}` }, { id: 1, vectors });
      const report = assertDeviceReport(checkDevice(device));
      expect(report.checks.map((c) => c.name)).toContain(`MSI-X capability 0x40 (${vectors} vectors)`);
    }
  });

  it("follows them as a PCI Express endpoint too", () => {
    expect(checkDevice(new PciTestDevice({ name: "pci-testdev0" }), { express: "endpoint" }).failures).toEqual([]);
  });

  it.skipIf(!gate.ok)("a guest finds the device and exercises it through both BARs and MSI-X", async () => {
    const run = await runGuestProgram({ source: guestSource, devices: () => [new PciTestDevice({ name: "pci-testdev0" })] });
    expect(run.serial).not.toContain("FAIL");
    expect(run.serial).toContain("pci-testdev: MSI-X interrupts received: ok");
    expect(run.serial).toContain("pci-testdev: PASS");
    expect(run.status).toBe(0);
  });
});
