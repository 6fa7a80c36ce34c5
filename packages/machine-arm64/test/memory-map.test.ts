import { ConfigurationError } from "@vmm/core";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildArm64MemoryMap, formatRange, type Arm64MemoryMap, type GicVersion, type NamedRange } from "../src/index.js";

const GIB = 2 ** 30;
const MIB = 2 ** 20;

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigurationError);
    return (e as Error).message;
  }
  throw new Error("expected a refusal");
}

describe("the arm64 memory map", () => {
  it("defaults: the layout table of the README (GICv3, 2 vCPUs, 1 GiB of RAM at 2 GiB)", () => {
    const map = buildArm64MemoryMap({ ramSize: GIB, cpus: 2 });
    expect(map.regions.map((r) => `${formatRange(r)} ${r.name}`)).toEqual([
      "0x0-0x10000 the PCI I/O window",
      "0x1000000-0x1010000 the UART",
      "0x30000000-0x30040000 the GIC redistributors",
      "0x3ff00000-0x3ff10000 the GIC distributor",
      "0x3ff20000-0x3ff40000 the GICv3 ITS",
      "0x40000000-0x50000000 the PCI ECAM window",
      "0x50000000-0x80000000 the PCI MMIO window",
      "0x80000000-0xc0000000 RAM",
      "0x1000000000-0x2000000000 the 64-bit PCI MMIO window",
    ]);
    expect(map.pci.ecam.busCount).toBe(256);
    expect(map.ipaBits).toBe(40);
  });

  it("GICv2: distributor, CPU interface and v2m frame instead of redistributors and ITS", () => {
    const map = buildArm64MemoryMap({ ramSize: GIB, cpus: 8, gic: "v2" });
    expect(map.regions.filter((r) => r.name.includes("GIC")).map((r) => `${formatRange(r)} ${r.name}`)).toEqual([
      "0x3ff00000-0x3ff10000 the GIC distributor",
      "0x3ff10000-0x3ff20000 the GIC CPU interface",
      "0x3ff20000-0x3ff30000 the GICv2m MSI frame",
    ]);
    expect(map.gic.cpuInterface!.size).toBe(0x2000);
  });

  it("the 64-bit window follows RAM: aligned to its size, above RAM and above 4 GiB", () => {
    expect(formatRange(buildArm64MemoryMap({ ramSize: 70 * GIB, cpus: 1 }).pci.mmio64)).toBe("0x2000000000-0x3000000000");
    expect(formatRange(buildArm64MemoryMap({ ramSize: GIB, ramBase: 0x1_0000_0000, cpus: 1 }).pci.mmio64)).toBe("0x1000000000-0x2000000000");
  });

  it.each([
    ["RAM at 0 (the I/O window)", { ramBase: 0, ramSize: GIB }, "RAM 0x0-0x40000000 overlaps the PCI I/O window 0x0-0x10000"],
    ["RAM at 1 GiB (ECAM)", { ramBase: GIB, ramSize: GIB }, "RAM 0x40000000-0x80000000 overlaps the PCI ECAM window 0x40000000-0x50000000"],
    ["RAM at 1.5 GiB (the MMIO window)", { ramBase: 0x6000_0000, ramSize: GIB }, "RAM 0x60000000-0xa0000000 overlaps the PCI MMIO window 0x50000000-0x80000000"],
    ["RAM under the GIC", { ramBase: 0x2000_0000, ramSize: 0x1000_0000 + 2 * MIB }, "RAM 0x20000000-0x30200000 overlaps the GIC redistributors 0x30000000-0x30040000"],
    ["RAM under the UART", { ramBase: 0x20_0000, ramSize: 16 * MIB }, "RAM 0x200000-0x1200000 overlaps the UART 0x1000000-0x1010000"],
  ])("refuses %s in one line naming both ranges", (_what, o, message) => {
    expect(refusal(() => buildArm64MemoryMap({ cpus: 2, ...o }))).toBe(message);
  });

  it.each([
    ["a RAM base off 2 MiB", { ramSize: GIB, ramBase: 0x8010_0000, cpus: 1 }, /RAM base 0x80100000 must be 2 MiB aligned/],
    ["RAM that is not whole MiB", { ramSize: GIB + 1, cpus: 1 }, /whole number of MiB/],
    ["RAM under 16 MiB", { ramSize: 8 * MIB, cpus: 1 }, /at least 16 MiB/],
    ["0 vCPUs", { ramSize: GIB, cpus: 0 }, /1 to 512 vCPUs \(asked for 0\)/],
    ["513 vCPUs", { ramSize: GIB, cpus: 513 }, /1 to 512 vCPUs/],
    ["9 vCPUs on GICv2", { ramSize: GIB, cpus: 9, gic: "v2" as const }, /GICv2 addresses at most 8 vCPUs \(asked for 9\); use GICv3/],
    ["RAM past the IPA size", { ramSize: 1024 * GIB, cpus: 1 }, /^RAM 0x80000000-0x10080000000 ends above the 40-bit guest physical address space \(0x10000000000\)$/],
    [
      "a 64-bit window past the IPA size",
      { ramSize: 970 * GIB, cpus: 1 },
      /^the 64-bit PCI MMIO window 0x10000000000-0x11000000000 \(placed above RAM 0x80000000-0xf300000000\) ends above the 40-bit/,
    ],
    ["an IPA size of 60 bits", { ramSize: GIB, cpus: 1, ipaBits: 60 }, /32 to 52 bits/],
  ])("refuses %s", (_what, o, message) => {
    expect(refusal(() => buildArm64MemoryMap(o))).toMatch(message);
  });

  it("a larger IPA size makes room: 2 TiB of RAM with 44 bits", () => {
    expect(buildArm64MemoryMap({ ramSize: 2048 * GIB, cpus: 1, ipaBits: 44 }).ram.size).toBe(2048 * GIB);
  });
});

const REFUSAL = /^(.+?) (0x[0-9a-f]+)-(0x[0-9a-f]+) overlaps (.+?) (0x[0-9a-f]+)-(0x[0-9a-f]+)$/;
const IPA = /^(.+?) (0x[0-9a-f]+)-(0x[0-9a-f]+)(?: \(placed above RAM (0x[0-9a-f]+)-(0x[0-9a-f]+)\))? ends above the (\d+)-bit guest physical address space/;

describe("memory map properties (random RAM bases, sizes, vCPU counts, GIC versions, IPA sizes)", () => {
  const options = fc.record({
    // 2 MiB aligned bases anywhere below 1 TiB, weighted toward the low 4 GiB where the devices are.
    ramBase: fc.oneof(fc.integer({ min: 0, max: 2047 }), fc.integer({ min: 0, max: 2 ** 19 - 1 })).map((n) => n * 2 * MIB),
    ramSize: fc.oneof(fc.integer({ min: 16, max: 4096 }), fc.integer({ min: 16, max: 2 ** 20 })).map((n) => n * MIB),
    cpus: fc.integer({ min: 1, max: 512 }),
    gic: fc.constantFrom<GicVersion>("v2", "v3"),
    ipaBits: fc.integer({ min: 36, max: 48 }),
  });

  it("either no region overlaps another and every device window lies outside RAM and below the IPA limit, or the refusal names two ranges that do collide", () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(options, (o) => {
        const cpus = o.gic === "v2" ? Math.min(o.cpus, 8) : o.cpus;
        let map: Arm64MemoryMap;
        try {
          map = buildArm64MemoryMap({ ...o, cpus });
        } catch (e) {
          expect(e).toBeInstanceOf(ConfigurationError);
          refused++;
          const message = (e as Error).message;
          const overlap = REFUSAL.exec(message);
          if (overlap) {
            const [, a, aBase, aEnd, b, bBase, bEnd] = overlap;
            expect(a).toBe("RAM"); // only RAM moves, so RAM is always one of the two
            expect([aBase, aEnd]).toEqual([`0x${o.ramBase.toString(16)}`, `0x${(o.ramBase + o.ramSize).toString(16)}`]);
            expect(Number(aBase) < Number(bEnd) && Number(bBase) < Number(aEnd), message).toBe(true);
            expect(b).toMatch(/^the /);
            return;
          }
          const ipa = IPA.exec(message);
          expect(ipa, message).not.toBeNull();
          const [, what, base, end, ramBase, ramEnd, bits] = ipa!;
          expect(Number(bits)).toBe(o.ipaBits);
          expect(Number(end)).toBeGreaterThan(2 ** o.ipaBits);
          if (what === "RAM") expect(Number(base)).toBe(o.ramBase);
          else expect([Number(ramBase), Number(ramEnd)]).toEqual([o.ramBase, o.ramBase + o.ramSize]);
          return;
        }
        accepted++;
        const sorted: NamedRange[] = [...map.regions].sort((a, b) => a.base - b.base);
        for (let i = 1; i < sorted.length; i++) expect(sorted[i - 1]!.base + sorted[i - 1]!.size, `${sorted[i - 1]!.name} / ${sorted[i]!.name}`).toBeLessThanOrEqual(sorted[i]!.base);
        for (const r of map.regions) {
          expect(r.base + r.size).toBeLessThanOrEqual(2 ** o.ipaBits);
          if (r !== map.ram) expect(r.base + r.size <= map.ram.base || r.base >= map.ram.base + map.ram.size, r.name).toBe(true);
        }
        expect(map.ram).toMatchObject({ base: o.ramBase, size: o.ramSize });
        expect(map.pci.mmio64.base % map.pci.mmio64.size).toBe(0);
        expect(map.pci.mmio64.base).toBeGreaterThanOrEqual(Math.max(map.ram.base + map.ram.size, 4 * GIB));
      }),
      { numRuns: 3000 },
    );
    // Both outcomes are exercised, not only one.
    expect(accepted).toBeGreaterThan(300);
    expect(refused).toBeGreaterThan(300);
  });
});
