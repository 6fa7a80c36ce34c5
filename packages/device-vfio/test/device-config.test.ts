// The passthrough model's config space as a guest sees it through the bus: identity, BAR sizing, the ROM,
// which bits are the VMM's and which the device's, capabilities at the device's offsets, hidden capabilities and
// the PCI Express capability per placement.
import { afterEach, describe, expect, it } from "vitest";
import { ConfigurationError, type PciAddress } from "@vmm/core";
import { PcieRootPort, type PciBus } from "@vmm/pci";
import { VfioRegion } from "../src/backend/backend.js";
import { get, makeRig, nicDevice, nvmeDevice, passthrough, put, romImage, type Rig } from "./device-fake.js";

let rig: Rig;
afterEach(() => rig?.cleanup());

/** The capability IDs and offsets a guest finds by walking the chain. */
function chain(bus: PciBus, at: PciAddress): string[] {
  const out: string[] = [];
  for (let p = bus.configRead(at, 0x34, 1); p !== 0 && out.length < 64; p = bus.configRead(at, p + 1, 1) & 0xfc) {
    out.push(`${bus.configRead(at, p, 1).toString(16)}@${p.toString(16)}`);
  }
  return out;
}

function extendedChain(bus: PciBus, at: PciAddress): string[] {
  const out: string[] = [];
  for (let p = 0x100; p !== 0 && out.length < 64; ) {
    const h = bus.configRead(at, p, 4);
    if (h === 0) break;
    out.push(`${(h & 0xffff).toString(16)}@${p.toString(16)}`);
    p = (h >>> 20) & 0xffc;
  }
  return out;
}

describe("identity and header", () => {
  it("enumerates with the device's IDs, class, revision, subsystem and pin; the host's multi-function bit does not show", () => {
    rig = makeRig();
    const dev = nicDevice();
    const at = rig.bus.attach(passthrough(rig, dev));
    expect(rig.bus.configRead(at, 0x00, 4)).toBe(0x8168_10ec);
    expect(rig.bus.configRead(at, 0x08, 4)).toBe(0x0200_0015);
    expect(rig.bus.configRead(at, 0x2c, 4)).toBe(0x8677_1043);
    expect(rig.bus.configRead(at, 0x0e, 1)).toBe(0x00);
    expect(rig.bus.configRead(at, 0x3d, 1)).toBe(1);
    expect(rig.bus.configRead(at, 0x3c, 1)).toBe(rig.lines.live()!.gsi); // the line the bus routed
    // The IDs are the VMM's copy: the device changing its bytes changes nothing.
    put(dev.config, 0x00, 2, 0xffff);
    expect(rig.bus.configRead(at, 0x00, 2)).toBe(0x10ec);
  });

  it("reports pin 0 when the backend has no INTx to signal", () => {
    rig = makeRig();
    const at = rig.bus.attach(passthrough(rig, nvmeDevice()));
    expect(rig.bus.configRead(at, 0x3d, 1)).toBe(0);
  });

  it("refuses bridges and non-PCI devices in one line naming the device", () => {
    rig = makeRig();
    const bridge = nicDevice();
    bridge.config[0x0e] = 0x01;
    expect(() => passthrough(rig, bridge)).toThrow(/vfio0: fake 0000:01:00.0 has header type 1 \(a bridge\)/);
    const platform = nicDevice();
    platform.flags = 0;
    expect(() => passthrough(rig, platform)).toThrow(ConfigurationError);
  });
});

describe("BARs", () => {
  it("are sized from the regions with the device's kinds: I/O, 64-bit, 64-bit prefetchable", () => {
    rig = makeRig();
    const at = rig.bus.attach(passthrough(rig, nicDevice()));
    rig.bus.configWrite(at, 0x04, 2, 0);
    for (let o = 0x10; o < 0x28; o += 4) rig.bus.configWrite(at, o, 4, 0xffff_ffff);
    const bars = [0x10, 0x14, 0x18, 0x1c, 0x20, 0x24].map((o) => rig.bus.configRead(at, o, 4).toString(16));
    expect(bars).toEqual(["ffffff01", "0", "fffff004", "ffffffff", "ffffc00c", "ffffffff"]);
  });

  it("a 64-bit BAR at an odd index, and a sub-page BAR", () => {
    rig = makeRig();
    const fn = passthrough(rig, nvmeDevice());
    expect(fn.bars).toEqual([
      { index: 0, kind: "mem32", size: 0x100 },
      { index: 1, kind: "mem64", size: 0x4000 },
    ]);
    const at = rig.bus.attach(fn);
    rig.bus.configWrite(at, 0x04, 2, 0);
    rig.bus.configWrite(at, 0x14, 4, 0xffff_ffff);
    rig.bus.configWrite(at, 0x18, 4, 0xffff_ffff);
    expect(rig.bus.configRead(at, 0x14, 4)).toBe(0xffff_c004);
    expect(rig.bus.configRead(at, 0x18, 4)).toBe(0xffff_ffff);
  });

  it("BAR values are the VMM's: the device never sees them", () => {
    rig = makeRig();
    const dev = nicDevice();
    const at = rig.bus.attach(passthrough(rig, dev));
    rig.bus.configWrite(at, 0x18, 4, 0xd300_0000);
    expect(dev.configWrites.filter((w) => /^(1[0-9a-f]|2[0-7])\//.test(w))).toEqual([]);
    expect(get(dev.config, 0x18, 4)).toBe(0x4);
  });
});

describe("expansion ROM", () => {
  it("reads back byte-exact through the ROM BAR", () => {
    rig = makeRig();
    const fn = passthrough(rig, nicDevice());
    const at = rig.bus.attach(fn);
    rig.bus.configWrite(at, 0x30, 4, 0xffff_f800);
    expect(rig.bus.configRead(at, 0x30, 4)).toBe(0xffff_0000); // 64 KiB
    rig.bus.configWrite(at, 0x30, 4, 0xd380_0001);
    const read = new Uint8Array(0x10000);
    for (let o = 0; o < read.length; o += 4) {
      const v = rig.mmio.read(0xd380_0000 + o, 4);
      for (let i = 0; i < 4; i++) read[o + i] = (v >>> (8 * i)) & 0xff;
    }
    expect(read).toEqual(romImage(0x10000));
  });

  it("can be left out or replaced by an image", () => {
    rig = makeRig();
    expect(passthrough(rig, nicDevice(), { rom: "none" }).rom).toBeUndefined();
    const image = romImage(3000);
    expect(passthrough(rig, nicDevice(), { name: "vfio1", rom: image }).rom).toEqual({ size: 4096, bytes: image });
  });

  it("a ROM without the 55 AA signature is still exposed, with a warning", () => {
    rig = makeRig();
    const dev = nicDevice();
    dev.bytes(VfioRegion.ROM).fill(0xff);
    expect(passthrough(rig, dev).rom?.size).toBe(0x10000);
    expect(rig.logger.lines.some((l) => l.includes("no 55 AA signature"))).toBe(true);
  });
});

describe("emulated and passed-through bits", () => {
  it("status is the device's, live, but for the capability-list bit; its error bits are cleared on the device", () => {
    rig = makeRig();
    const dev = nicDevice();
    const at = rig.bus.attach(passthrough(rig, dev));
    put(dev.config, 0x06, 2, 0x2008); // master abort received, INTx pending; the device "forgot" bit 4
    expect(rig.bus.configRead(at, 0x06, 2)).toBe(0x2018);
    rig.bus.configWrite(at, 0x06, 2, 0x2000);
    expect(dev.configWrites.at(-1)).toBe("6/2=2010");
  });

  it("the command register is the VMM's, and every write reaches the device so it decodes and masters", () => {
    rig = makeRig();
    const dev = nicDevice();
    const at = rig.bus.attach(passthrough(rig, dev));
    expect(dev.configWrites.filter((w) => w.startsWith("4/"))).toEqual(["4/2=3"]); // the bus enabled decoding
    rig.bus.configWrite(at, 0x04, 2, 0x0407);
    expect(dev.configWrites.at(-1)).toBe("4/2=407");
    put(dev.config, 0x04, 2, 0);
    expect(rig.bus.configRead(at, 0x04, 2)).toBe(0x0407);
  });

  it("vendor registers and the bodies of capabilities the VMM does not model pass through both ways", () => {
    rig = makeRig();
    const dev = nicDevice();
    const at = rig.bus.attach(passthrough(rig, dev));
    expect(rig.bus.configRead(at, 0x48, 4)).toBe(0xfeed_f00d);
    put(dev.config, 0x48, 4, 0x0bad_cafe);
    expect(rig.bus.configRead(at, 0x48, 4)).toBe(0x0bad_cafe);
    rig.bus.configWrite(at, 0x44, 2, 0x8103); // PM control/status: D3hot, PME status
    expect(dev.configWrites.at(-1)).toBe("44/2=8103");
    expect(rig.bus.configRead(at, 0x40, 4)).toBe(0x0003_5001); // PM header: ID, next (the chain's), capabilities (the device's)
    expect(rig.bus.configRead(at, 0xc4, 4)).toBe(0x1234_5678); // vendor-specific capability body
  });

  it("interrupt line, MSI and MSI-X registers stay with the VMM", () => {
    rig = makeRig();
    const dev = nicDevice();
    const at = rig.bus.attach(passthrough(rig, dev));
    const before = dev.configWrites.length;
    rig.bus.configWrite(at, 0x3c, 1, 0x0b);
    rig.bus.configWrite(at, 0x54, 4, 0xfee0_0000);
    rig.bus.configWrite(at, 0xb2, 2, 0x8000);
    expect(dev.configWrites.slice(before)).toEqual([]);
    expect(rig.bus.configRead(at, 0x3c, 1)).toBe(0x0b);
  });
});

describe("capabilities", () => {
  it("stay at the device's offsets, in its order; MSI and MSI-X are the VMM's with the device's shape", () => {
    rig = makeRig();
    const at = rig.bus.attach(passthrough(rig, nicDevice()), { express: "rc-integrated" });
    expect(chain(rig.bus, at)).toEqual(["1@40", "5@50", "10@70", "11@b0", "9@c0"]);
    expect(rig.bus.configRead(at, 0x52, 2)).toBe(0x0184); // 4 vectors, 64-bit, per-vector mask
    expect(rig.bus.configRead(at, 0xb2, 2)).toBe(0x0003); // 4 vectors
    expect(rig.bus.configRead(at, 0xb4, 4)).toBe(0x0000_0004); // table BAR4 + 0
    expect(rig.bus.configRead(at, 0xb8, 4)).toBe(0x0000_0804); // PBA BAR4 + 0x800
  });

  it("hides what the VMM cannot virtualize; hidden bodies read 0 and keep writes from the device", () => {
    rig = makeRig();
    const dev = nicDevice();
    const at = rig.bus.attach(passthrough(rig, dev), { express: "rc-integrated" });
    expect(chain(rig.bus, at)).not.toContain("14@d0"); // Enhanced Allocation
    expect(rig.bus.configRead(at, 0xd4, 4)).toBe(0);
    expect(extendedChain(rig.bus, at)).toEqual(["1@100", "3@180"]); // SR-IOV at 0x140 unlinked
    expect(rig.bus.configRead(at, 0x144, 4)).toBe(0);
    rig.bus.configWrite(at, 0x144, 4, 0x1);
    expect(dev.configWrites.some((w) => w.startsWith("144/"))).toBe(false);
    expect(rig.bus.configRead(at, 0x104, 4)).toBe(0x10); // AER passes through
    expect(rig.bus.configRead(at, 0x184, 4)).toBe(0x8765_4321); // DSN passes through
  });

  it("hides MSI when the backend cannot signal it", () => {
    rig = makeRig();
    const dev = nicDevice();
    dev.irqCounts[1] = 0;
    const at = rig.bus.attach(passthrough(rig, dev));
    expect(chain(rig.bus, at)).toEqual(["1@40", "11@b0", "9@c0"]);
  });

  it("cuts a looping chain and keeps what came before, with a warning", () => {
    rig = makeRig();
    const dev = nicDevice();
    put(dev.config, 0x51, 1, 0x40); // MSI's next points back to PM
    const at = rig.bus.attach(passthrough(rig, dev));
    expect(chain(rig.bus, at)).toEqual(["1@40", "5@50"]);
    expect(rig.logger.lines.some((l) => l.includes("loops back to 0x40"))).toBe(true);
  });
});

describe("PCI Express capability per placement", () => {
  it("conventional PCI: hidden, 256 bytes of config space", () => {
    rig = makeRig();
    const at = rig.bus.attach(passthrough(rig, nicDevice()));
    expect(chain(rig.bus, at)).toEqual(["1@40", "5@50", "11@b0", "9@c0"]);
    expect(rig.bus.configRead(at, 0x74, 4)).toBe(0);
    expect(rig.bus.configRead(at, 0x100, 4)).toBe(0);
  });

  it("on the root bus: a root-complex integrated endpoint with no link", () => {
    rig = makeRig();
    const dev = nicDevice();
    const fn = passthrough(rig, dev);
    const at = rig.bus.attach(fn, { express: "rc-integrated" });
    expect(fn.express).toBe(true);
    expect(rig.bus.configRead(at, 0x72, 2)).toBe(0x0092); // version 2, type 9
    for (const o of [0x7c, 0x80, 0x9c, 0xa0]) expect(rig.bus.configRead(at, o, 4)).toBe(0);
    rig.bus.configWrite(at, 0x80, 2, 0x0043);
    expect(rig.bus.configRead(at, 0x80, 2)).toBe(0);
    expect(dev.configWrites.some((w) => w.startsWith("80/"))).toBe(false);
    // What describes the device passes through.
    expect(rig.bus.configRead(at, 0x74, 4)).toBe(0x1000_8fc0);
    expect(rig.bus.configRead(at, 0x94, 4)).toBe(0x0000_0812);
    rig.bus.configWrite(at, 0x78, 2, 0x2830);
    expect(dev.configWrites.at(-1)).toBe("78/2=2830");
  });

  it("below a root port: an endpoint whose link agrees with the port's", () => {
    rig = makeRig();
    const rp = new PcieRootPort({ name: "rp1", port: 1, slot: 1 });
    const rpAt = rig.bus.attach(rp, { device: 1 });
    const dev = nicDevice();
    const fn = passthrough(rig, dev);
    const at = rig.bus.attach(fn, { behind: rp, express: "endpoint" });
    expect(rig.bus.configRead(at, 0x72, 2)).toBe(0x0002); // version 2, type 0
    const rpCap = chain(rig.bus, rpAt).find((c) => c.startsWith("10@"))!.split("@")[1]!;
    const rpLinkStatus = rig.bus.configRead(rpAt, parseInt(rpCap, 16) + 0x12, 2);
    const linkStatus = rig.bus.configRead(at, 0x82, 2);
    expect(linkStatus & 0x3ff).toBe(rpLinkStatus & 0x3ff); // speed and width: 2.5 GT/s x1
    expect(rig.bus.configRead(at, 0x7c, 4)).toBe(0x11);
    expect(rig.bus.configRead(at, 0x9c, 4)).toBe(0x2); // supported speeds: 2.5 GT/s
    expect(rig.bus.configRead(at, 0xa0, 2)).toBe(0x1);
    rig.bus.configWrite(at, 0x80, 2, 0x0043); // ASPM L0s+L1, common clock: the virtual link's
    expect(rig.bus.configRead(at, 0x80, 2)).toBe(0x0043);
    expect(dev.configWrites.some((w) => w.startsWith("80/"))).toBe(false);
  });

  it("a legacy endpoint stays one below a root port; an RCiEP device becomes an endpoint", () => {
    rig = makeRig();
    const rp = new PcieRootPort({ name: "rp1" });
    rig.bus.attach(rp, { device: 1 });
    const legacy = nicDevice();
    put(legacy.config, 0x72, 2, 0x0012);
    const at = rig.bus.attach(passthrough(rig, legacy), { behind: rp, express: "endpoint" });
    expect(rig.bus.configRead(at, 0x72, 2)).toBe(0x0012);
    const rp2 = new PcieRootPort({ name: "rp2" });
    rig.bus.attach(rp2, { device: 2 });
    const rciep = nicDevice();
    put(rciep.config, 0x72, 2, 0x0092);
    const at2 = rig.bus.attach(passthrough(rig, rciep, { name: "vfio1" }), { behind: rp2, express: "endpoint" });
    expect(rig.bus.configRead(at2, 0x72, 2)).toBe(0x0002);
  });

  it("a device without a PCI Express capability stays conventional PCI wherever it is placed", () => {
    rig = makeRig();
    const fn = passthrough(rig, nvmeDevice());
    const at = rig.bus.attach(fn, { express: "rc-integrated" });
    expect(fn.express).toBe(false);
    expect(chain(rig.bus, at)).toEqual(["11@60"]);
    expect(rig.bus.configRead(at, 0x100, 4)).toBe(0);
    expect(rig.logger.lines.some((l) => l.includes("no usable PCI Express capability: it stays a conventional PCI function"))).toBe(true);
  });

  it("a PCI Express capability that overlaps the next one is hidden (and the function is conventional)", () => {
    rig = makeRig();
    const dev = nicDevice();
    put(dev.config, 0x71, 1, 0x80); // a version 2 capability at 0x70 and another at 0x80: 16 bytes of room
    put(dev.config, 0x80, 2, 0xb009);
    put(dev.config, 0x82, 1, 0x08);
    const fn = passthrough(rig, dev);
    const at = rig.bus.attach(fn, { express: "rc-integrated" });
    expect(chain(rig.bus, at)).toEqual(["1@40", "5@50", "9@80", "11@b0", "9@c0"]);
    expect(rig.bus.configRead(at, 0x70, 4)).toBe(0);
    expect(fn.express).toBe(false);
  });

  it("Initiate Function Level Reset resets the device through the backend and reads 0", () => {
    rig = makeRig();
    const dev = nicDevice();
    const at = rig.bus.attach(passthrough(rig, dev), { express: "rc-integrated" });
    const resets = dev.resets;
    rig.bus.configWrite(at, 0x78, 2, 0xa810);
    expect(dev.resets).toBe(resets + 1);
    expect(rig.bus.configRead(at, 0x78, 2) & 0x8000).toBe(0);
    expect(dev.configWrites.filter((w) => w.startsWith("78/")).at(-1)).toBe("78/2=2810");
    expect(rig.bus.configRead(at, 0x04, 2)).toBe(0); // the function's state is reset with it
  });
});
