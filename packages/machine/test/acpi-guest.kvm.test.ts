import { MemoryLogger } from "@vmm/core";
import { buildGuest } from "@vmm/guest-kit";
import { PciFunction } from "@vmm/pci";
import { describe, expect, it } from "vitest";
import { Machine, buildAcpiTables, byteSum } from "./internals.js";
import { kvmOk } from "./helpers.js";

const text = (b: Uint8Array) => String.fromCharCode(...b);

describe.skipIf(!kvmOk)("ACPI tables in a running guest (with the DSDT's PCI root bridge)", () => {
  it("the guest finds checksummed MCFG and MADT, and RSDP -> XSDT -> FADT -> DSDT in guest memory is the built, checksummed DSDT", async () => {
    const path = await buildGuest("pci-ecam", { format: "raw" });
    let serial = "";
    const machine = new Machine({
      memoryMiB: 64,
      logger: new MemoryLogger(),
      kernel: { kind: "raw", path },
      serial: { output: (b) => void (serial += Buffer.from(b).toString("latin1")) },
    });
    try {
      machine.addPciDevice(new PciFunction({ name: "probe", vendorId: 0x1af4, deviceId: 0x10ff, classCode: 0xff0000, interruptPin: 1 }));
      const result = await machine.run();
      expect(serial).toMatch(/RSDP at 0x[0-9a-f]+ rev 2, MCFG ok, MADT ok\n/);
      expect(serial).toContain("pci 00:01.0 id 10ff1af4 class ff000000\n");
      expect(serial).toContain("mismatches 0\n");
      expect(result.status).toBe(0);

      // Walk the tables as an OS does, from the RSDP the guest found.
      const m = machine.memory;
      const rsdp = parseInt(/RSDP at 0x([0-9a-f]+)/.exec(serial)![1]!, 16);
      expect(text(m.view(rsdp, 8))).toBe("RSD PTR ");
      expect(byteSum(m.view(rsdp, 36))).toBe(0);
      const xsdt = Number(m.readU64(rsdp + 24));
      const sdt = (at: number) => m.view(at, m.readU32(at + 4));
      const pointed = Array.from({ length: (m.readU32(xsdt + 4) - 36) / 8 }, (_, i) => Number(m.readU64(xsdt + 36 + 8 * i)));
      const facp = pointed.find((a) => text(m.view(a, 4)) === "FACP")!;
      expect(byteSum(sdt(facp))).toBe(0);
      const dsdtAt = Number(m.readU64(facp + 140));
      expect(m.readU32(facp + 40)).toBe(dsdtAt);
      const dsdt = sdt(dsdtAt);
      expect(text(dsdt.subarray(0, 4))).toBe("DSDT");
      expect(byteSum(dsdt)).toBe(0);
      const built = buildAcpiTables(machine.platform(), 0xf0000).find((t) => t.address === dsdtAt)!;
      expect(Buffer.from(dsdt).equals(Buffer.from(built.bytes))).toBe(true);
      expect(Buffer.from(dsdt).includes("PCI0")).toBe(true);
    } finally {
      machine.close();
    }
  });
});
