import { ConfigurationError } from "@vmm/core";
import { decodeU64, findNode, getProperty, readDtb } from "@vmm/fdt";
import { describe, expect, it } from "vitest";
import { describeArm64Machine } from "../src/index.js";
import { checkBindings } from "./bindings.js";
import { image } from "./images.js";

// Options -> memory map, DTB and load plan, as `vmm run --arch arm64` (and --dump-dtb) will call it.

describe("describeArm64Machine", () => {
  it("a kernel, an initrd and a command line: the DTB's /chosen points at the planned initrd, the entry at the DTB", () => {
    const initrd = new Uint8Array(0x5_0000).fill(7);
    const m = describeArm64Machine({ ramSize: 256 * 2 ** 20, cpus: 2, kernel: image({ textOffset: 0, imageSize: 0x80_0000 }), initrd, cmdline: "console=ttyS0" });
    const plan = m.loadPlan!;
    const tree = readDtb(m.dtb);
    const chosen = findNode(tree.root, "/chosen")!;
    expect(Number(decodeU64(getProperty(chosen, "linux,initrd-start")!.value))).toBe(plan.initrd!.base);
    expect(Number(decodeU64(getProperty(chosen, "linux,initrd-end")!.value))).toBe(plan.initrd!.base + initrd.length);
    expect(plan.dtb.size).toBe(m.dtb.length);
    expect(plan.entry).toEqual({ pc: plan.kernel.gpa, x0: plan.dtb.base });
    expect(m.initrd).toBe(initrd);
    expect(checkBindings(tree, { map: m.memoryMap, cpus: 2, bootargs: "console=ttyS0", initrd: plan.initrd })).toEqual([]);
    // Kernel, initrd and DTB are disjoint and inside RAM.
    const spans = [{ base: plan.kernel.gpa, size: plan.kernel.imageSize }, plan.initrd!, plan.dtb].sort((a, b) => a.base - b.base);
    for (let i = 1; i < spans.length; i++) expect(spans[i - 1]!.base + spans[i - 1]!.size).toBeLessThanOrEqual(spans[i]!.base);
    expect(spans[spans.length - 1]!.base + spans[spans.length - 1]!.size).toBeLessThanOrEqual(m.memoryMap.ram.base + m.memoryMap.ram.size);
  });

  it("without a kernel (--dump-dtb alone): a DTB, no load plan, no initrd in /chosen", () => {
    const m = describeArm64Machine({ ramSize: 2 ** 30, ramBase: 2 ** 32, cpus: 1, gic: "v2" });
    expect(m.loadPlan).toBeUndefined();
    const tree = readDtb(m.dtb);
    expect(getProperty(findNode(tree.root, "/chosen")!, "linux,initrd-start")).toBeUndefined();
    expect(findNode(tree.root, "/memory@100000000")).toBeDefined();
    expect(checkBindings(tree, { map: m.memoryMap, cpus: 1 })).toEqual([]);
  });

  it("refuses an initrd without a kernel, and a --mem-base that collides with a device", () => {
    expect(() => describeArm64Machine({ ramSize: 2 ** 30, cpus: 1, initrd: new Uint8Array(1) })).toThrow(ConfigurationError);
    expect(() => describeArm64Machine({ ramSize: 2 ** 30, ramBase: 0x3fe0_0000, cpus: 1 })).toThrow(
      "RAM 0x3fe00000-0x7fe00000 overlaps the GIC distributor 0x3ff00000-0x3ff10000",
    );
  });
});
