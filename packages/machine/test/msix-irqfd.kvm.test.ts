import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MemoryLogger } from "@vmm/core";
import { buildGuest } from "@vmm/guest-kit";
import { MsixCapability, PciFunction } from "@vmm/pci";
import { describe, expect, it } from "vitest";
import { Machine } from "./internals.js";
import { kvmOk } from "./helpers.js";

const here = dirname(fileURLToPath(import.meta.url));

/** A function whose BAR0 register fires the MSI-X vector written to it (table and PBA in BAR1). */
class MsixProbe extends PciFunction {
  readonly vectors = new MsixCapability({ vectors: 2, tableBar: 1, tableOffset: 0x800 });
  constructor() {
    super({ name: "msix-probe", vendorId: 0x1234, deviceId: 0xf00d, classCode: 0xff0000, bars: [{ index: 0, kind: "mem32", size: 0x1000 }, { index: 1, kind: "mem32", size: 0x1000 }] });
    this.addCapability(this.vectors);
  }
  protected override deviceBarHandler(index: number) {
    return index === 0 ? { read: () => 0, write: (_o: number, _s: number, v: number) => this.vectors.notify(v) } : undefined;
  }
}

describe.skipIf(!kvmOk)("MSI-X through irqfd routes under /dev/kvm", () => {
  it("delivers a guest-programmed MSI-X function's vectors by eventfd writes, never KVM_SIGNAL_MSI, with masking intact", async () => {
    const path = await buildGuest("msix-irqfd", { format: "elf", source: join(here, "guests", "msix-irqfd.c") });
    const logger = new MemoryLogger();
    let serial = "";
    const machine = new Machine({ memoryMiB: 64, logger, kernel: { kind: "elf", path }, serial: { output: (b) => void (serial += Buffer.from(b).toString("latin1")) } });
    try {
      const probe = new MsixProbe();
      machine.addPciDevice(probe);
      const [router] = machine.pci.msiVectorSets(probe);
      expect(router).toBeDefined();
      const timer = setTimeout(() => machine.stop("test timeout"), 60_000);
      const result = await machine.run().finally(() => clearTimeout(timer));
      if (result.status !== 0) console.log(serial, logger.lines.join("\n"));
      expect(serial).toMatch(/msix-irqfd: 11 checks, 0 failures/);
      expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
      // Five deliveries (pending-on-unmask, plain, after the data change, after the function mask, vector 1),
      // every one an eventfd write; none through KVM_SIGNAL_MSI.
      expect(machine.interrupts.msiSignals).toBe(0);
      expect(machine.msiRoutes.triggers).toBe(5);
      expect(router!.fallbacks).toBe(0);
      // Routes follow the table only when a deliverable vector's message changes: vector 0 created at unmask,
      // updated once for 0x42, vector 1 created at its unmask. Field-by-field writes while masked cost nothing.
      expect(machine.msiRoutes.commits).toBe(3);
      expect(machine.msiRoutes.size).toBe(2);
      expect(router!.route(0)?.gsi).toBeGreaterThanOrEqual(24);
    } finally {
      machine.close();
    }
    expect(machine.msiRoutes.size).toBe(0);
  }, 90_000);
});
