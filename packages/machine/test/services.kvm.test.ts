import { MemoryLogger, type PciBarWindow } from "@vmm/core";
import { buildGuest } from "@vmm/guest-kit";
import { EventFd } from "@vmm/host-io";
import { PcieRootPort, PciFunction } from "@vmm/pci";
import { describe, expect, it } from "vitest";
import { Machine } from "./internals.js";
import { kvmOk } from "./helpers.js";

class TestFunction extends PciFunction {
  activated: PciBarWindow[] = [];
  constructor() {
    super({
      name: "testdev0",
      vendorId: 0x1234,
      deviceId: 0x5678,
      classCode: 0xff0000,
      bars: [{ index: 0, kind: "mem32", size: 0x1000 }],
      interruptPin: 1,
    });
  }
  override barActivated(w: PciBarWindow): void {
    this.activated.push(w);
  }
}

describe.skipIf(!kvmOk)("machine services under KVM", () => {
  it("signals an ioeventfd without a userspace exit, and counts writes nobody handles", async () => {
    const path = await buildGuest("port-poke", { format: "raw" });
    let serial = "";
    const machine = new Machine({ memoryMiB: 32, kernel: { kind: "raw", path }, logger: new MemoryLogger(), serial: { output: (b) => void (serial += Buffer.from(b).toString()) } });
    let notified = 0;
    machine.ioEvents.add({ space: "pio", address: 0x520, size: 1 }, () => notified++);
    try {
      const result = await machine.run();
      await new Promise((r) => setTimeout(r, 20)); // a signal raised just before the exit is read on the next turn
      expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
      expect(serial).toBe("pokes done\nsurvived\n");
      expect(notified).toBeGreaterThanOrEqual(1);
      // Port 0x510 reached userspace (no handler: counted, all-ones); the 0x520 writes never did.
      expect(machine.pio.unhandled).toBe(1);
    } finally {
      machine.close();
    }
  });

  it("stops cleanly naming the device when a device handler throws", async () => {
    const path = await buildGuest("port-poke", { format: "elf" });
    let serial = "";
    const machine = new Machine({ memoryMiB: 32, kernel: { kind: "elf", path }, logger: new MemoryLogger(), serial: { output: (b) => void (serial += Buffer.from(b).toString()) } });
    machine.pio.register(0x510, 1, "exploding-device", {
      read: () => 0,
      write: () => {
        throw new Error("boom");
      },
    });
    try {
      const result = await machine.run();
      expect(result).toEqual({ status: 1, reason: "error", message: "device exploding-device failed on a pio write at 0x510: boom" });
      expect(serial).toBe("pokes done\n");
    } finally {
      machine.close();
    }
  });

  it("puts PCI devices on bus 0 where the guest finds them through CF8/CFC and ECAM, with their INTx in the MP table", async () => {
    const dev = new TestFunction();
    const enumerated = await runWithDevice("pci-ecam", dev);
    expect(enumerated.serial).toContain("pci 00:00.0 id 29c08086 class 06000000\n");
    expect(enumerated.serial).toContain("pci 00:01.0 id 56781234 class ff000000\n");
    expect(enumerated.serial).toContain("mismatches 0\n");
    expect(dev.activated.map((w) => [w.index, w.kind])).toEqual([[0, "mem32"]]);
    expect(enumerated.routes).toEqual([{ bus: 0, device: 1, pin: 1, gsi: 17 }]);
    // 15 ISA IRQs + the device's INTA#
    const mp = await runWithDevice("mptable", new TestFunction());
    expect(mp.serial).toContain("MP cpus 1 io-interrupts 16\n");
  });

  it("routes INTx of a function behind a root port through the bridge swizzle: MP table and DSDT name the bus-0 slot", () => {
    const machine = new Machine({ memoryMiB: 32, kernel: { kind: "raw", path: "/dev/null" }, logger: new MemoryLogger() });
    try {
      const rp = new PcieRootPort({ name: "rp" });
      machine.addPciDevice(new TestFunction());
      machine.addPciDevice(rp);
      const dev = new TestFunction();
      machine.addPciDevice(dev, { behind: rp, express: "endpoint" });
      // 00:02.0 is the root port; its device 0's INTA is the port's INTA: GSI 16 + (2 + 1 - 1) % 4.
      expect(machine.platform().pciIntx).toEqual([
        { bus: 0, device: 1, pin: 1, gsi: 17 },
        { bus: 0, device: 2, pin: 1, gsi: 18 },
      ]);
      expect(dev.configRead(0x3c, 1)).toBe(18);
      expect(machine.pciTopology()[2]!.children.map((c) => [c.name, c.address.bus, c.express])).toEqual([["testdev0", 1, true]]);
    } finally {
      machine.close();
    }
  });

  it("KVM takes a PCI function's INTx as an irqfd with a resample fd on its routed GSI, and gives it back", () => {
    const machine = new Machine({ memoryMiB: 32, kernel: { kind: "raw", path: "/dev/null" }, logger: new MemoryLogger() });
    const trigger = new EventFd();
    const resample = new EventFd();
    try {
      const dev = new TestFunction();
      machine.addPciDevice(dev);
      const irqfd = dev.intx.irqfd;
      expect(irqfd).toBeDefined();
      const handle = irqfd!(trigger.fd, resample.fd); // KVM_IRQFD with KVM_IRQFD_FLAG_RESAMPLE
      trigger.write(1);
      handle.remove();
      irqfd!(trigger.fd, resample.fd).remove(); // the same pair again: the first was really deassigned
    } finally {
      machine.close();
      trigger.close();
      resample.close();
    }
  });
});

async function runWithDevice(program: string, dev: TestFunction) {
  const path = await buildGuest(program, { format: "raw" });
  let serial = "";
  const machine = new Machine({ memoryMiB: 32, kernel: { kind: "raw", path }, logger: new MemoryLogger(), serial: { output: (b) => void (serial += Buffer.from(b).toString()) } });
  try {
    machine.addPciDevice(dev);
    const result = await machine.run();
    expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
    return { serial, routes: machine.platform().pciIntx };
  } finally {
    machine.close();
  }
}

describe.skipIf(!kvmOk)("MSI delivery under KVM", () => {
  it("delivers an MSI through KVM_SIGNAL_MSI and another through an irqfd on an MSI GSI route", async () => {
    const path = await buildGuest("msi", { format: "elf" });
    let serial = "";
    let machine: Machine | undefined;
    let sent = false;
    machine = new Machine({
      memoryMiB: 32,
      kernel: { kind: "elf", path },
      logger: new MemoryLogger(),
      serial: {
        output: (b) => {
          serial += Buffer.from(b).toString();
          if (!sent && serial.includes("ready")) {
            sent = true;
            const m = machine!;
            setTimeout(() => {
              m.interrupts.signal({ address: 0xfee00000, data: 0x41 });
              const route = m.msiRoutes.add({ address: 0xfee00000, data: 0x40 });
              route.update({ address: 0xfee00000, data: 0x42 });
              route.trigger();
            }, 5);
          }
        },
      },
    });
    try {
      const result = await machine.run();
      expect(serial).toContain("msi: ready, address fee00000\n");
      expect(serial).toContain("msi: vector 41 x1, vector 42 x1\n");
      expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
    } finally {
      machine.close();
    }
  });
});
