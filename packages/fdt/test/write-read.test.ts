import { describe, expect, it } from "vitest";
import {
  FdtBuilder,
  FdtError,
  decodeCells,
  decodeString,
  decodeStringList,
  decodeU64,
  findNode,
  getProperty,
  nodesEqual,
  parseRanges,
  parseReg,
  childCellWidths,
  readDtb,
  writeDtb,
  walkNodes,
  type Devicetree,
} from "../src/index.js";

const be32 = (...words: number[]) => words.flatMap((w) => [(w >>> 24) & 0xff, (w >>> 16) & 0xff, (w >>> 8) & 0xff, w & 0xff]);
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

describe("writeDtb: the layout of the Devicetree Specification v0.4 chapter 5", () => {
  it("writes a one-property root byte for byte: header, reservations, structure tokens, strings", () => {
    const tree = new FdtBuilder()
      .reserve(0x8000_0000n, 0x1000n)
      .root((r) => r.u32("ab", 7))
      .build({ bootCpuId: 3 });
    const dtb = writeDtb(tree);
    // rsvmap at 40: one entry and the {0,0} terminator; structure (32 bytes) at 72; strings "ab\0" at 104.
    const structure = [...be32(1), 0, 0, 0, 0, ...be32(3, 4, 0, 7), ...be32(2, 9)];
    const expected = [
      ...be32(0xd00dfeed, 107, 72, 104, 40, 17, 16, 3, 3, 32),
      ...be32(0, 0x8000_0000, 0, 0x1000, 0, 0, 0, 0),
      ...structure,
      ...ascii("ab"),
      0,
    ];
    expect([...dtb]).toEqual(expected);
  });

  it("pads node names and property values to 4 bytes and stores each property name once", () => {
    const tree = new FdtBuilder()
      .root((r) =>
        r
          .string("compatible", "x")
          .node("abcde", (n) => n.bytes("compatible", new Uint8Array([1, 2, 3])).empty("dma-coherent"))
          .node("b", (n) => n.empty("dma-coherent")),
      )
      .build();
    const dtb = writeDtb(tree);
    const view = new DataView(dtb.buffer);
    const stringsSize = view.getUint32(32);
    expect(stringsSize).toBe("compatible\0dma-coherent\0".length);
    const structOff = view.getUint32(8);
    const structSize = view.getUint32(36);
    expect(structOff % 4).toBe(0);
    expect(structSize % 4).toBe(0);
    // "abcde\0" takes 8 bytes; the 3-byte value takes 4.
    const tokens = decodeCells(dtb.subarray(structOff, structOff + structSize));
    expect(tokens.filter((t) => t === 1).length).toBeGreaterThanOrEqual(3);
    expect(tokens[tokens.length - 1]).toBe(9);
    expect(nodesEqual(readDtb(dtb).root, tree.root)).toBe(true);
  });

  it("reads back what it wrote: properties, children, reservations and the boot CPU", () => {
    const tree = new FdtBuilder()
      .reserve(0x1000, 0x2000)
      .root((r) =>
        r
          .u32("#address-cells", 2)
          .u32("#size-cells", 2)
          .strings("compatible", ["a,b", "c"])
          .node("memory@80000000", (m) => m.string("device_type", "memory").reg([{ address: 0x8000_0000, size: 0x4000_0000 }]))
          .node("chosen", (c) => c.string("bootargs", "console=ttyS0").u64("linux,initrd-start", 0x1_2345_6789n)),
      )
      .build({ bootCpuId: 1 });
    const back = readDtb(writeDtb(tree));
    expect(back.bootCpuId).toBe(1);
    expect(back.reservations).toEqual([{ address: 0x1000n, size: 0x2000n }]);
    expect(nodesEqual(back.root, tree.root)).toBe(true);
    const memory = findNode(back.root, "/memory")!;
    expect(parseReg(getProperty(memory, "reg")!.value, childCellWidths(back.root))).toEqual([{ address: 0x8000_0000n, size: 0x4000_0000n }]);
    expect(decodeString(getProperty(findNode(back.root, "/chosen")!, "bootargs")!.value)).toBe("console=ttyS0");
    expect(decodeU64(getProperty(findNode(back.root, "/chosen")!, "linux,initrd-start")!.value)).toBe(0x1_2345_6789n);
    expect(decodeStringList(getProperty(back.root, "compatible")!.value)).toEqual(["a,b", "c"]);
    expect([...walkNodes(back.root)].map((e) => e.path)).toEqual(["/", "/memory@80000000", "/chosen"]);
  });
});

describe("FdtBuilder", () => {
  it("allocates phandles by label, so a node can be referenced before it is built", () => {
    const b = new FdtBuilder();
    b.root((r) =>
      r
        .u32("interrupt-parent", r.ref("gic"))
        .node("uart", (u) => u.u32("clocks", u.ref("clk")))
        .node("intc", (g) => g.phandle("gic"))
        .node("clk", (c) => c.phandle("clk")),
    );
    const tree = b.build();
    expect(decodeCells(getProperty(tree.root, "interrupt-parent")!.value)).toEqual([1]);
    expect(decodeCells(getProperty(findNode(tree.root, "/intc")!, "phandle")!.value)).toEqual([1]);
    expect(decodeCells(getProperty(findNode(tree.root, "/clk")!, "phandle")!.value)).toEqual([2]);
  });

  it("refuses a referenced phandle no node defines, and one defined twice", () => {
    const missing = new FdtBuilder().root((r) => r.u32("interrupt-parent", r.ref("gic")));
    expect(() => missing.build()).toThrow(/defined by no node: gic/);
    expect(() => new FdtBuilder().root((r) => r.node("a", (a) => a.phandle("x")).node("b", (b) => b.phandle("x")))).toThrow(
      /"x" is defined by both \/a and \/b/,
    );
  });

  it("encodes reg with the parent's cells and ranges with both nodes' cells", () => {
    const tree = new FdtBuilder()
      .root((r) =>
        r
          .u32("#address-cells", 2)
          .u32("#size-cells", 2)
          .node("bus@40000000", (bus) =>
            bus
              .u32("#address-cells", 3)
              .u32("#size-cells", 2)
              .reg([{ address: 0x4000_0000, size: 0x1000_0000 }])
              .ranges([{ child: (0x0200_0000n << 64n) | 0x5000_0000n, parent: 0x5000_0000, size: 0x3000_0000 }]),
          )
          .node("soc", (s) => s.u32("#address-cells", 1).u32("#size-cells", 1).ranges([])),
      )
      .build();
    const bus = findNode(tree.root, "/bus@40000000")!;
    expect(decodeCells(getProperty(bus, "reg")!.value)).toEqual([0, 0x4000_0000, 0, 0x1000_0000]);
    expect(decodeCells(getProperty(bus, "ranges")!.value)).toEqual([0x0200_0000, 0, 0x5000_0000, 0, 0x5000_0000, 0, 0x3000_0000]);
    expect(parseRanges(getProperty(bus, "ranges")!.value, childCellWidths(bus), childCellWidths(tree.root))).toEqual([
      { child: (0x0200_0000n << 64n) | 0x5000_0000n, parent: 0x5000_0000n, size: 0x3000_0000n },
    ]);
    expect(getProperty(findNode(tree.root, "/soc")!, "ranges")!.value.length).toBe(0);
  });

  it("refuses duplicates, properties after children and values that do not fit their cells", () => {
    expect(() => new FdtBuilder().root((r) => r.u32("a", 1).u32("a", 2))).toThrow(/"a" set twice/);
    expect(() => new FdtBuilder().root((r) => r.node("n").node("n"))).toThrow(/"n" added twice/);
    expect(() => new FdtBuilder().root((r) => r.node("n").u32("late", 1))).toThrow(/after a child node/);
    expect(() => new FdtBuilder().root((r) => r.u32("big", 2 ** 32))).toThrow(FdtError);
    expect(() => new FdtBuilder().root((r) => r.u32("#address-cells", 1).node("x", (x) => x.reg([{ address: 2 ** 32, size: 1 }])))).toThrow(
      /does not fit in 1 cell/,
    );
    expect(() => new FdtBuilder().root((r) => r.string("s", "a\0b"))).toThrow(/contains a NUL/);
  });
});

describe("writeDtb refuses trees the format cannot hold", () => {
  const withRoot = (root: Devicetree["root"]): Devicetree => ({ root, reservations: [], bootCpuId: 0 });
  it.each([
    ["a named root", withRoot({ name: "x", properties: [], children: [] }), /root node's name must be empty/],
    ["a node name with a space", withRoot({ name: "", properties: [], children: [{ name: "a b", properties: [], children: [] }] }), /not a valid node name/],
    ["a 32-character node name", withRoot({ name: "", properties: [], children: [{ name: "a".repeat(32), properties: [], children: [] }] }), /not a valid node name/],
    ["a property name with '@'", withRoot({ name: "", properties: [{ name: "a@b", value: new Uint8Array() }], children: [] }), /not a valid property name/],
    [
      "two properties of one name",
      withRoot({ name: "", properties: [{ name: "a", value: new Uint8Array() }, { name: "a", value: new Uint8Array() }], children: [] }),
      /"a" appears twice/,
    ],
  ])("%s", (_what, tree, message) => {
    expect(() => writeDtb(tree)).toThrow(message);
  });
});
