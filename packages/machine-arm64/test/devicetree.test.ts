import { createMmioSpace, createPortIoSpace, SignalMsiVectors } from "@vmm/core";
import { readDtb, findNode, getProperty, writeDtb, type Devicetree, type FdtNode } from "@vmm/fdt";
import { PciBus, PciFunction } from "@vmm/pci";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildArm64Dtb, buildArm64MemoryMap, GIC_SPI_BASE, PCI_INTX_SPIS, type Arm64MemoryMap, type GicVersion } from "../src/index.js";
import { checkBindings, parseInterruptMap, type Expected } from "./bindings.js";

// The generated tree, read back from its DTB, against what Linux's bindings require of every node.

function machine(gic: GicVersion, cpus: number, extra: { bootargs?: string; initrd?: { base: number; size: number }; ramBase?: number; ramSize?: number } = {}) {
  const map = buildArm64MemoryMap({ ramSize: extra.ramSize ?? 2 ** 30, ramBase: extra.ramBase, cpus, gic });
  const tree = readDtb(buildArm64Dtb({ map, cpus, bootargs: extra.bootargs, initrd: extra.initrd }));
  const expected: Expected = { map, cpus, bootargs: extra.bootargs, initrd: extra.initrd };
  return { map, tree, expected };
}

/** A copy of the tree with `edit` applied to the node at `path`. */
function edited(tree: Devicetree, path: string, edit: (n: FdtNode) => FdtNode): Devicetree {
  const target = findNode(tree.root, path);
  const rebuild = (n: FdtNode): FdtNode => (n === target ? edit(n) : { ...n, children: n.children.map(rebuild) });
  return { ...tree, root: rebuild(tree.root) };
}
const without = (name: string) => (n: FdtNode): FdtNode => ({ ...n, properties: n.properties.filter((p) => p.name !== name) });

describe("the arm64 devicetree meets the bindings Linux reads it with", () => {
  it.each([
    ["GICv3 + ITS, 1 vCPU", "v3", 1],
    ["GICv3 + ITS, 4 vCPUs", "v3", 4],
    ["GICv3 + ITS, 64 vCPUs (MPIDR Aff1 in use)", "v3", 64],
    ["GICv2 + v2m, 1 vCPU", "v2", 1],
    ["GICv2 + v2m, 8 vCPUs", "v2", 8],
  ] as const)("%s", (_what, gic, cpus) => {
    const { tree, expected } = machine(gic, cpus, { bootargs: "console=ttyS0 earlycon", initrd: { base: 0x8400_0000, size: 0x12345 } });
    expect(checkBindings(tree, expected)).toEqual([]);
  });

  it("holds for random RAM placements, vCPU counts and GIC versions (property)", () => {
    fc.assert(
      // RAM from 2 GiB to 256 GiB, 16 MiB to 64 GiB of it: placements the map accepts (memory-map.test.ts
      // covers the refused ones).
      fc.property(fc.constantFrom<GicVersion>("v2", "v3"), fc.integer({ min: 1, max: 512 }), fc.integer({ min: 1024, max: 128 * 1024 }), fc.integer({ min: 16, max: 65536 }), (gic, cpus, base2m, mib) => {
        const n = gic === "v2" ? Math.min(cpus, 8) : cpus;
        const built = machine(gic, n, { ramBase: base2m * 2 ** 21, ramSize: mib * 2 ** 20 });
        expect(checkBindings(built.tree, built.expected)).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });

  it("catches a broken tree: each requirement fails on a tree that lacks it", () => {
    const { tree, expected } = machine("v3", 2, { bootargs: "x" });
    const pcie = "/pcie@40000000";
    const cases: [string, Devicetree, RegExp][] = [
      ["no bus-range", edited(tree, pcie, without("bus-range")), /bus-range/],
      ["no interrupt-map-mask", edited(tree, pcie, without("interrupt-map-mask")), /./],
      ["no msi-map", edited(tree, pcie, without("msi-map")), /MSIs go to no msi-controller/],
      ["no dma-coherent", edited(tree, pcie, without("dma-coherent")), /not dma-coherent/],
      ["linux,pci-probe-only", edited(tree, "/chosen", (n) => ({ ...n, properties: [...n.properties, { name: "linux,pci-probe-only", value: new Uint8Array([0, 0, 0, 1]) }] })), /pci-probe-only/],
      ["psci by smc", edited(tree, "/psci", (n) => ({ ...n, properties: n.properties.map((p) => (p.name === "method" ? { ...p, value: new TextEncoder().encode("smc\0") } : p)) })), /method hvc/],
      ["no stdout-path", edited(tree, "/chosen", without("stdout-path")), /stdout-path/],
      ["no #address-cells on the GIC", edited(tree, "/interrupt-controller@3ff00000", without("#address-cells")), /#address-cells/],
    ];
    for (const [what, broken, message] of cases) {
      const problems = checkBindings(broken, expected);
      expect(problems.join("\n"), what).toMatch(message);
    }
    const ranges = getProperty(findNode(tree.root, pcie)!, "ranges")!.value.slice();
    ranges[ranges.length - 1] ^= 0x10; // the 64-bit window's size
    expect(checkBindings(edited(tree, pcie, (n) => ({ ...n, properties: n.properties.map((p) => (p.name === "ranges" ? { ...p, value: ranges } : p)) })), expected).join("\n")).toMatch(
      /range 2 does not match the 64-bit PCI MMIO window/,
    );
  });

  it("routes every slot and pin as the PCI bus does (a real PciBus with intxGsis = PCI_INTX_SPIS)", () => {
    const { tree } = machine("v3", 1);
    const map = new Map(parseInterruptMap(tree, findNode(tree.root, "/pcie@40000000")!).map((e) => [`${e.device}/${e.pin}`, e.specifier[1]!]));
    const bus = new PciBus({
      pio: createPortIoSpace(),
      mmio: createMmioSpace(),
      msiVectors: new SignalMsiVectors({ signal: () => {} }),
      irq: () => ({ level: false, set: () => {} }),
      windows: { io: { base: 0x1000, size: 0xf000 }, mem32: { base: 0x5000_0000, size: 0x3000_0000 } },
      intxGsis: PCI_INTX_SPIS,
      hostBridge: false,
    });
    // Functions 0-3 of every slot use pins INTA#-INTD#: every slot/pin pair of the map is exercised.
    for (let device = 0; device < 32; device++) {
      for (let fn = 0; fn < 4; fn++) {
        const f = new PciFunction({ name: `f${device}.${fn}`, vendorId: 0x1af4, deviceId: 0x1000, classCode: 0xff0000, interruptPin: (fn + 1) as 1 | 2 | 3 | 4 });
        bus.attach(f, { device, function: fn });
      }
    }
    const routes = bus.intxRoutes();
    expect(routes).toHaveLength(128);
    for (const r of routes) expect(map.get(`${r.address.device}/${r.pin}`), `${r.address.device}.${r.address.function} pin ${r.pin}`).toBe(r.gsi);
    // And the conventional swizzle, spelled out: INTA# of slot 0 is the first INTx SPI, rotating by slot.
    for (let d = 0; d < 32; d++) for (let pin = 1; pin <= 4; pin++) expect(map.get(`${d}/${pin}`)).toBe(PCI_INTX_SPIS[(d + pin - 1) % 4]);
  });

  it("GICv2m: the frame states the SPIs MSIs become, and no other interrupt uses them", () => {
    const { tree } = machine("v2", 2);
    const frame = findNode(tree.root, "/interrupt-controller@3ff00000/msi-controller@3ff20000")!;
    const base = new DataView(getProperty(frame, "arm,msi-base-spi")!.value.buffer).getUint32(0);
    const count = new DataView(getProperty(frame, "arm,msi-num-spis")!.value.buffer).getUint32(0);
    const wired = [...PCI_INTX_SPIS, 0].map((s) => s + GIC_SPI_BASE);
    expect(wired.some((intid) => intid >= base && intid < base + count)).toBe(false);
    expect(base).toBeGreaterThanOrEqual(GIC_SPI_BASE);
  });

  it("writes the same bytes for the same options, and the boot CPU is cpu@0", () => {
    const map: Arm64MemoryMap = buildArm64MemoryMap({ ramSize: 2 ** 29, cpus: 3 });
    const a = buildArm64Dtb({ map, cpus: 3, bootargs: "a" });
    expect(buildArm64Dtb({ map, cpus: 3, bootargs: "a" })).toEqual(a);
    expect(readDtb(a).bootCpuId).toBe(0);
    expect(writeDtb(readDtb(a))).toEqual(a);
  });
});
