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

  it("direct boot (no firmware): the MCFG in guest memory names ECAM at 0xE0000000, where the host bridge's PCIEXBAR reads back enabled", async () => {
    const path = await buildGuest("pci-ecam", { format: "raw" });
    const machine = new Machine({ memoryMiB: 64, logger: new MemoryLogger(), kernel: { kind: "raw", path }, serial: { output: () => {} } });
    try {
      machine.load();
      const m = machine.memory;
      let rsdp = -1;
      for (let at = 0xf0000; at < 0x100000 && rsdp < 0; at += 16) if (text(m.view(at, 8)) === "RSD PTR ") rsdp = at;
      expect(rsdp).toBeGreaterThan(0);
      const xsdt = Number(m.readU64(rsdp + 24));
      const pointed = Array.from({ length: (m.readU32(xsdt + 4) - 36) / 8 }, (_, i) => Number(m.readU64(xsdt + 36 + 8 * i)));
      const mcfg = pointed.find((a) => text(m.view(a, 4)) === "MCFG")!;
      expect(byteSum(m.view(mcfg, m.readU32(mcfg + 4)))).toBe(0);
      expect(Number(m.readU64(mcfg + 44))).toBe(0xe000_0000); // the allocation's base address
      expect([m.view(mcfg + 54, 1)[0], m.view(mcfg + 55, 1)[0]]).toEqual([0, 255]); // buses 0-255
      // PCIEXBAR (00:00.0, 0x60): base 0xE0000000, length 256 buses (bits 2:1 = 0), enabled, through CF8/CFC and ECAM.
      machine.pio.write(0xcf8, 4, 0x8000_0060);
      expect(machine.pio.read(0xcfc, 4)).toBe(0xe000_0001);
      machine.pio.write(0xcf8, 4, 0x8000_0064);
      expect(machine.pio.read(0xcfc, 4)).toBe(0);
      expect(machine.mmio.read(0xe000_0000 + 0x60, 4)).toBe(0xe000_0001);
      expect(machine.hostBridge.ecamWindow).toEqual({ enabled: true, base: 0xe000_0000, busCount: 256 });
    } finally {
      machine.close();
    }
  });
});
