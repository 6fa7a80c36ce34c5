import { describe, expect, it } from "vitest";
import { PciProbe } from "../src/probe-device.js";
import { kvmOk, runGuest } from "./support.js";

describe.skipIf(!kvmOk)("a guest drives the PCI bus under /dev/kvm", () => {
  it("enumerates, sizes, moves (onto another device and back), toggles decode, uses MSI-X and INTx", async () => {
    const { result, serial, logger } = await runGuest("pci-bus", () => [new PciProbe("probe-a"), new PciProbe("probe-b")]);
    if (result.status !== 0) console.log(serial, logger.lines.join("\n"));
    expect(serial).not.toContain("FAIL");
    expect(serial).toMatch(/pci 00:00\.0 8086:29c0 class 060000\n/);
    expect(serial.match(/pci 00:0[0-9a-f]\.0 1234:beef class ff0000\n/g)).toHaveLength(2);
    expect(serial).toMatch(/pci-bus: \d{2,} checks, 0 failures\n/);
    expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
    // The move onto the UART was refused and logged, not applied.
    expect(logger.lines.join("\n")).toMatch(/warn: .*probe-a/);
  });
});
