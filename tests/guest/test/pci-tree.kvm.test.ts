import { PcieRootPort } from "@vmm/pci";
import { describe, expect, it } from "vitest";
import { PciProbe } from "../src/probe-device.js";
import { kvmOk, runGuest } from "./support.js";

describe.skipIf(!kvmOk)("a guest walks a PCI Express tree under /dev/kvm", () => {
  it("renumbers buses, programs bridge windows, reads PCIe capabilities and extended space (endpoints and an RC integrated endpoint), gates decode by windows, MSI-X and INTx through root ports", async () => {
    const { result, serial, logger } = await runGuest("pci-tree", () => {
      const rp1 = new PcieRootPort({ name: "rp1", port: 1, slot: 1 });
      const rp2 = new PcieRootPort({ name: "rp2", port: 2, slot: 2 });
      return [
        rp1,
        [new PciProbe("probe-a"), { behind: rp1, express: "endpoint" }],
        rp2,
        [new PciProbe("probe-b"), { behind: rp2, express: "endpoint" }],
        [new PciProbe("probe-c"), { express: "rc-integrated" }],
      ];
    });
    if (result.status !== 0 || process.env.SHOW) console.log(serial, logger.lines.join("\n"));
    expect(serial).not.toContain("FAIL");
    expect(serial).toMatch(/pci 00:0[0-9a-f]\.0 1b36:000c class 060400 bridge\n/);
    // The guest's own bus numbers: 0x20 and 0x21 behind the two root ports.
    expect(serial).toMatch(/pci 20:00\.0 1234:beef class ff0000\n/);
    expect(serial).toMatch(/pci 21:00\.0 1234:beef class ff0000\n/);
    expect(serial).toMatch(/pci-tree: 2 bridges, 2 endpoints, buses 20-21\n/);
    expect(serial).toMatch(/pci-tree: \d{2,} checks, 0 failures\n/);
    expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
  });
});
