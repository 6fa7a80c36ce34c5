// A device (or a vfio-user server) that reports nonsense gets a model that stays inside its bounds: odd region
// sizes, mmap areas that do not line up, capabilities that point anywhere. Problems become warnings, never throws
// or out-of-range accesses.
import { afterEach, describe, expect, it } from "vitest";
import { VfioIrq, VfioRegion } from "../src/backend/backend.js";
import { FakeVfioDevice, makeRig, nicDevice, passthrough, put, type Rig } from "./device-fake.js";

let rig: Rig;
afterEach(() => rig?.cleanup());

/** A bare device with the given BAR regions and BAR register values; no capabilities. */
function bare(regions: ConstructorParameters<typeof FakeVfioDevice>[1], registers: Record<number, number>): FakeVfioDevice {
  const dev = new FakeVfioDevice(256, regions);
  put(dev.config, 0x00, 2, 0x1234);
  put(dev.config, 0x02, 2, 0x0001);
  for (const [i, v] of Object.entries(registers)) put(dev.config, 0x10 + 4 * Number(i), 4, v);
  dev.irqCounts[VfioIrq.INTX] = 0;
  return dev;
}

describe("regions", () => {
  it("a region that is not a power of two becomes the next power of two; the excess reads all-ones", () => {
    rig = makeRig();
    const dev = bare({ [VfioRegion.BAR0]: { size: 0x1800 } }, {});
    const fn = passthrough(rig, dev);
    expect(fn.bars).toEqual([{ index: 0, kind: "mem32", size: 0x2000 }]);
    expect(rig.logger.lines.some((l) => l.includes("exposed as a 0x2000-byte BAR"))).toBe(true);
    rig.bus.attach(fn);
    const bar0 = rig.bus.windows(fn)[0]!.address;
    expect(rig.mmio.read(bar0 + 0x1ffc, 4)).toBe(0xffff_ffff);
    rig.mmio.write(bar0 + 0x1ffc, 4, 1);
    expect(dev.regionReads).toEqual([]);
    expect(dev.regionWrites).toEqual([]);
  });

  it("mmap areas are clipped to the region and shrunk to whole pages; nonsense areas are ignored", () => {
    rig = makeRig();
    const dev = bare(
      {
        [VfioRegion.BAR0]: {
          size: 0x4000,
          mmap: [
            { offset: 0x800, size: 0x1000 }, // no whole page
            { offset: 0x1800, size: 0x1800 }, // the page at 0x2000
            { offset: 0x3000, size: 0x10000 }, // runs past the region
            { offset: -0x1000, size: 0x2000 },
          ],
        },
      },
      {},
    );
    const fn = passthrough(rig, dev);
    expect(fn.mappedSpans(0)).toEqual([
      { offset: 0x2000, size: 0x1000 },
      { offset: 0x3000, size: 0x1000 },
    ]);
  });

  it("a 64-bit BAR5 with no upper half is hidden", () => {
    rig = makeRig();
    const fn = passthrough(rig, bare({ [VfioRegion.BAR5]: { size: 0x1000 } }, { 5: 0x4 }));
    expect(fn.bars).toEqual([]);
    expect(rig.logger.lines.some((l) => l.includes("BAR5 claims 64 bits"))).toBe(true);
  });
});

describe("capabilities", () => {
  it("MSI-X whose table names an I/O BAR is hidden, with the reason logged", () => {
    rig = makeRig();
    const dev = nicDevice();
    put(dev.config, 0xb4, 4, 0x0000_0000); // table in BAR0, an I/O BAR
    const fn = passthrough(rig, dev);
    expect(fn.msix).toBeUndefined();
    const at = rig.bus.attach(fn);
    expect(rig.bus.configRead(at, 0xa9, 1)).toBe(0); // nothing links to 0xb0: MSI-X was the capability after PCIe
    expect(rig.logger.lines.some((l) => l.includes("MSI-X table needs memory BAR0"))).toBe(true);
  });

  it("a capability pointer into the header ends the walk", () => {
    rig = makeRig();
    const dev = nicDevice();
    put(dev.config, 0x41, 1, 0x10);
    const at = rig.bus.attach(passthrough(rig, dev));
    expect(rig.bus.configRead(at, 0x34, 1)).toBe(0x40);
    expect(rig.bus.configRead(at, 0x41, 1)).toBe(0);
    expect(rig.logger.lines.some((l) => l.includes("points into the header"))).toBe(true);
  });

  it("an extended list that loops is cut where it loops", () => {
    rig = makeRig();
    const dev = nicDevice();
    put(dev.config, 0x180, 4, (0x100 << 20) | (1 << 16) | 0x0003); // DSN points back to AER
    const at = rig.bus.attach(passthrough(rig, dev), { express: "rc-integrated" });
    expect(rig.bus.configRead(at, 0x180, 4) >>> 20).toBe(0);
    expect(rig.logger.lines.some((l) => l.includes("loops back to 0x100"))).toBe(true);
  });
});
