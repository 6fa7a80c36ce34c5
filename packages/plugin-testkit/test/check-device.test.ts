import { ConfigurationError } from "@vmm/core";
import { MsiCapability, MsixCapability, PciFunction } from "@vmm/pci";
import { describe, expect, it } from "vitest";
import { assertDeviceConforms, checkDevice, ConformanceError, describeFailure, type DeviceReport } from "../src/index.js";
import { goodRawDevice } from "./raw-device.js";

const failures = (r: DeviceReport) => r.failures.map(describeFailure);

/** A PciFunction with every kind of BAR, a ROM, MSI and MSI-X. */
class FullFunction extends PciFunction {
  constructor(express = false) {
    super({
      name: "full0",
      vendorId: 0x1af4,
      deviceId: 0x10f0,
      classCode: 0x020000,
      revision: 2,
      subsystemVendorId: 0x1af4,
      subsystemId: 0x0001,
      interruptPin: 1,
      bars: [
        { index: 0, kind: "io", size: 0x40 },
        { index: 1, kind: "mem32", size: 0x4000 },
        { index: 2, kind: "mem64", size: 0x10_0000, prefetchable: true },
      ],
      rom: new Uint8Array(3000),
      ...(express ? { express: { type: "endpoint" as const } } : {}),
    });
    this.addCapability(new MsiCapability({ vectors: 8, perVectorMask: true }));
    this.addCapability(new MsixCapability({ vectors: 70, tableBar: 2, tableOffset: 0x2000 }));
  }
}

describe("checkDevice on conforming devices", () => {
  it("passes a PciFunction with I/O, 32- and 64-bit BARs, a ROM, MSI and MSI-X, and lists what it checked", () => {
    const report = checkDevice(new FullFunction());
    expect(failures(report)).toEqual([]);
    expect(report.ok).toBe(true);
    const names = report.checks.map((c) => c.name);
    expect(names).toContain("read-only vendor ID");
    expect(names).toContain("BAR0 sizing");
    expect(names).toContain("BAR2 sizing (64-bit, BAR3 its upper half)");
    expect(names).toContain("BAR4 (not implemented)");
    expect(names).toContain("expansion ROM BAR sizing");
    expect(names.some((n) => /^MSI-X capability 0x[0-9a-f]+ \(70 vectors\)$/.test(n))).toBe(true);
    expect(names.some((n) => /^MSI capability 0x[0-9a-f]+ \(8 vectors, 64-bit, maskable\)$/.test(n))).toBe(true);
  });

  it("passes a PCI Express function, checking its extended capability list", () => {
    const report = checkDevice(new FullFunction(true));
    expect(failures(report)).toEqual([]);
    expect(report.checks.map((c) => c.name)).toContain("extended capability list");
    expect(report.checks.map((c) => c.name)).toContain("capability 0x40 (PCI Express)");
  });

  it("passes a conventional function placed as a PCI Express endpoint", () => {
    const report = checkDevice(new FullFunction(), { express: "endpoint" });
    expect(failures(report)).toEqual([]);
    expect(report.checks.some((c) => c.name.includes("PCI Express"))).toBe(true);
  });

  it("passes a hand-written PciDevice (no PciFunction) and leaves its registers as they were", () => {
    const device = goodRawDevice();
    const before = Uint8Array.from(device.bytes);
    const report = checkDevice(device);
    expect(failures(report)).toEqual([]);
    // The bus programmed BARs, the command register and the interrupt line at attach; everything else is untouched.
    const changed = [...device.bytes.keys()].filter((i) => device.bytes[i] !== before[i] && !(i >= 0x04 && i < 0x06) && !(i >= 0x10 && i < 0x18) && i !== 0x3c);
    expect(changed).toEqual([]);
    expect(assertDeviceConforms(goodRawDevice()).ok).toBe(true);
  });
});

describe("checkDevice on broken devices", () => {
  it("a writable vendor ID", () => {
    const d = goodRawDevice();
    d.set(0x00, 2, 0x1234, 0xffff);
    const report = checkDevice(d);
    expect(report.ok).toBe(false);
    expect(failures(report)).toContain(
      "config 0x000 read-only vendor ID: is read-only, but writing 0xffff changed it from 0x1234 to 0xffff and writing 0x0000 changed it from 0x1234 to 0x0000",
    );
  });

  it("a vendor ID of 0xffff and a type 1 header", () => {
    const d = goodRawDevice();
    d.set(0x00, 2, 0xffff).set(0x0e, 1, 0x01);
    const f = failures(checkDevice(d));
    expect(f).toContain("config 0x000 vendor ID: reads 0xffff: a guest takes the slot for empty (0xffff) or invalid (0x0000)");
    expect(f).toContain("config 0x00e header type: layout 0x01: an endpoint has a type 0 header");
  });

  it("a BAR whose writable bits are not a power-of-two size mask", () => {
    const d = goodRawDevice();
    d.set(0x10, 4, 0, 0xffff_f0f0);
    expect(failures(checkDevice(d))).toEqual([
      "config 0x010 BAR0 sizing: writing all-ones reads back 0xfffff0f0: the writable address bits are not a power-of-two size mask",
    ]);
  });

  it("a BAR that sizes differently from device.bars, and one device.bars does not declare", () => {
    const d = goodRawDevice();
    d.set(0x10, 4, 0, 0xffff_e000); // 8 KiB in config space, 4 KiB declared
    d.set(0x18, 4, 0, 0xffff_ff00); // BAR2: 256 bytes, undeclared
    const f = failures(checkDevice(d));
    expect(f).toContain("config 0x010 BAR0 sizing: config space shows a 32-bit memory BAR of 8192 bytes but device.bars declares a 32-bit memory BAR of 4096 bytes");
    expect(f).toContain("config 0x018 BAR2 sizing: is implemented (writing all-ones reads 0xffffff00) but device.bars declares no BAR 2");
  });

  it("a BAR with writable type bits", () => {
    const d = goodRawDevice();
    d.set(0x10, 4, 0, 0xffff_f00f);
    expect(failures(checkDevice(d))).toEqual([
      "config 0x010 BAR0 sizing: its type bits are not read-only (read 0xc0000000, then 0xfffff00f after writing all-ones, 0x00000000 after writing 0)",
    ]);
  });

  it("a 64-bit BAR whose upper half has a hole in its writable bits", () => {
    const d = goodRawDevice();
    d.set(0x18, 4, 0x4, 0xffff_fff0); // BAR2 64-bit, 16 bytes
    d.set(0x1c, 4, 0, 0xffff_00ff);
    d.bars = [...d.bars, { index: 2, kind: "mem64", size: 16 }];
    const f = failures(checkDevice(d));
    expect(f).toEqual([
      "config 0x018 BAR2 sizing (64-bit, BAR3 its upper half): writing all-ones reads back 0xffff00ff:fffffff4 (upper:lower): the writable address bits are not a power-of-two size mask",
    ]);
  });

  it("a capability loop", () => {
    const d = goodRawDevice();
    d.set(0x51, 1, 0x40); // the vendor capability points back at MSI-X
    expect(failures(checkDevice(d))).toEqual(["config 0x051 capability list: the next pointer at 0x51 points back to 0x40: the list loops"]);
  });

  it("a capability pointer outside 0x40..0xfc or unaligned, an unknown ID, overlapping capabilities", () => {
    const low = goodRawDevice().set(0x34, 1, 0x20);
    expect(failures(checkDevice(low))).toContain("config 0x034 capability list: the next pointer at 0x34 points to 0x20, outside 0x40..0xfc");
    const unaligned = goodRawDevice().set(0x41, 1, 0x52);
    expect(failures(checkDevice(unaligned))).toContain("config 0x041 capability list: the next pointer at 0x41 points to 0x52, which is not dword aligned");
    const unknown = goodRawDevice().set(0x50, 1, 0x3f);
    expect(failures(checkDevice(unknown))).toContain("config 0x050 capability 0x50 (unknown ID 0x3f): ID 0x3f is neither a defined capability nor vendor-specific (0x09)");
    const overlap = goodRawDevice().set(0x41, 1, 0x48).set(0x48, 1, 0x09).set(0x49, 1, 0).set(0x4a, 1, 4);
    expect(failures(checkDevice(overlap))).toContain("config 0x040 capability 0x40 (MSI-X): its 12 bytes overlap the vendor-specific capability at 0x48");
  });

  it("the status capability-list bit disagreeing with the pointer", () => {
    const d = goodRawDevice().set(0x06, 2, 0);
    expect(failures(checkDevice(d))).toEqual(["config 0x006 status capability-list bit: is clear but the capabilities pointer is 0x40: a guest ignores the list"]);
  });

  it("an MSI-X table outside its BAR, and a PBA overlapping the table", () => {
    const outside = goodRawDevice().set(0x44, 4, 0x0000_2000);
    expect(failures(checkDevice(outside))).toEqual([
      "config 0x040 MSI-X capability 0x40 (4 vectors): the table (0x2000+0x40) runs past the end of BAR0 (4096 bytes)",
    ]);
    const overlapping = goodRawDevice().set(0x48, 4, 0x0000_0830);
    expect(failures(checkDevice(overlapping))).toEqual([
      "config 0x040 MSI-X capability 0x40 (4 vectors): the table (0x800+0x40) and the PBA (0x830+0x08) overlap in BAR0",
    ]);
    const inIoBar = goodRawDevice().set(0x44, 4, 0x0000_0001);
    expect(failures(checkDevice(inIoBar))).toContain(
      "config 0x040 MSI-X capability 0x40 (4 vectors): the table is in BAR1, an I/O BAR (it must be a memory BAR)",
    );
    const writableSize = goodRawDevice().set(0x42, 2, 0x0003, 0xc7ff);
    expect(failures(checkDevice(writableSize))[0]).toMatch(/the table size field is not read-only/);
  });

  it("an MSI capability whose mask register covers more vectors than it is capable of", () => {
    const d = goodRawDevice();
    // MSI at 0x60 after the vendor capability: 2 vectors (MMC 1), 32-bit, per-vector masking.
    d.set(0x51, 1, 0x60);
    d.set(0x60, 1, 0x05).set(0x61, 1, 0).set(0x62, 2, 0x0102, 0x0071);
    d.set(0x64, 4, 0, 0xffff_fffc).set(0x68, 2, 0, 0xffff);
    d.set(0x6c, 4, 0, 0x0000_000f); // four mask bits for two vectors
    expect(failures(checkDevice(d))).toEqual([
      "config 0x060 MSI capability 0x60 (2 vectors, maskable): the mask bits at 0x6c read 0x0000000f after writing all-ones (want 0x00000003: one bit per capable vector)",
    ]);
  });

  it("a device the bus refuses is one failed attach check, not a throw", () => {
    const d = goodRawDevice();
    d.bars = [{ index: 0, kind: "mem32", size: 0x1800 }];
    const report = checkDevice(d);
    expect(report.checks).toHaveLength(1);
    expect(failures(report)[0]).toMatch(/^config 0x000 attach: the bus refused the device: raw0: BAR0: size 6144 must be a power of two/);
  });

  it("assertDeviceConforms throws a ConformanceError naming the device and every failed register", () => {
    const d = goodRawDevice().set(0x00, 2, 0x1234, 0xffff).set(0x51, 1, 0x40);
    let error: unknown;
    try {
      assertDeviceConforms(d);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConformanceError);
    const e = error as ConformanceError;
    expect(e.subject).toBe("device raw0");
    expect(e.problems).toHaveLength(3); // vendor ID, the dword ID write, the loop
    expect(e.message).toMatch(/^device raw0 does not conform \(3 problems\):\n {2}- config 0x000 read-only vendor ID: /);
    expect(e.message).toContain("\n  - config 0x051 capability list: the next pointer at 0x51 points back to 0x40: the list loops");
  });

  it("a device that throws on a config access is reported, not propagated", () => {
    const d = goodRawDevice();
    d.configWrite = () => {
      throw new ConfigurationError("boom");
    };
    const report = checkDevice(d);
    expect(report.ok).toBe(false);
  });
});
