import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FdtBuilder, nodesEqual, readDtb, writeDtb, type FdtNode } from "../src/index.js";
import { dtcRoundTrip, hostToolAvailable } from "@vmm/test-support";

// dtc, the reference implementation, reads what this package writes and writes what it reads.

const HAVE_DTC = hostToolAvailable("dtc");
if (!HAVE_DTC) console.warn("SKIP dtc round trips: dtc is missing (Debian package device-tree-compiler)");

describe.skipIf(!HAVE_DTC)("round trip through dtc (dtb -> dts -> dtb)", () => {
  it("a tree with reservations, cells, u64s, strings, string lists, bytes and phandles: no warnings, same tree", () => {
    const tree = new FdtBuilder()
      .reserve(0x8000_0000, 0x10_0000)
      .root((r) =>
        r
          .u32("#address-cells", 2)
          .u32("#size-cells", 2)
          .strings("compatible", ["vendor,board", "linux,dummy-virt"])
          .string("model", "test")
          .u32("interrupt-parent", r.ref("intc"))
          .node("chosen", (c) => c.string("bootargs", "console=ttyS0 root=/dev/vda").u64("linux,initrd-start", 0x8800_0000).u64("linux,initrd-end", 0x8900_0000))
          .node("memory@80000000", (m) => m.string("device_type", "memory").reg([{ address: 0x8000_0000, size: 0x4000_0000 }]))
          .node("intc@8000000", (g) =>
            g.string("compatible", "arm,cortex-a15-gic").u32("#interrupt-cells", 3).u32("#address-cells", 0).empty("interrupt-controller").reg([
              { address: 0x800_0000, size: 0x1000 },
              { address: 0x801_0000, size: 0x2000 },
            ]).phandle("intc"),
          )
          .node("serial@1000000", (s) =>
            s.string("compatible", "ns16550a").reg([{ address: 0x100_0000, size: 8 }]).u32("clock-frequency", 1843200).u32("interrupts", 0, 1, 4).bytes("vendor,blob", new Uint8Array([1, 2, 3, 0xff, 0])),
          ),
      )
      .build({ bootCpuId: 0 });
    const dtb = writeDtb(tree);
    const back = dtcRoundTrip(dtb);
    expect(back.warnings).toBe("");
    // dtc 1.6 prints a string list as one string with \0 separators.
    expect(back.dts).toMatch(/compatible = "vendor,board(\\0|", ")linux,dummy-virt";/);
    expect(back.dts).toMatch(/\/memreserve\/\s+0x0000000080000000 0x0000000000100000;/);
    const reread = readDtb(back.dtb);
    expect(nodesEqual(reread.root, tree.root)).toBe(true);
    expect(reread.reservations).toEqual(tree.reservations);
  });

  it("random property bytes under vendor-prefixed names survive dtc's guessing of their types (property)", () => {
    const leaf = fc.record({
      name: fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/),
      properties: fc.uniqueArray(fc.record({ name: fc.stringMatching(/^vendor,[a-z][a-z0-9-]{0,12}$/), value: fc.uint8Array({ maxLength: 24 }) }), {
        selector: (p) => p.name,
        maxLength: 5,
      }),
      children: fc.constant([] as FdtNode[]),
    });
    fc.assert(
      fc.property(fc.uniqueArray(leaf, { selector: (n) => n.name, maxLength: 4 }), (children) => {
        const root: FdtNode = { name: "", properties: [], children };
        const back = dtcRoundTrip(writeDtb({ root, reservations: [], bootCpuId: 0 }));
        expect(back.warnings).toBe("");
        expect(nodesEqual(readDtb(back.dtb).root, root)).toBe(true);
      }),
      { numRuns: 25 },
    );
  });
});
