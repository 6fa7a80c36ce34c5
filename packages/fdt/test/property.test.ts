import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nodesEqual, readDtb, writeDtb, type Devicetree, type FdtNode } from "../src/index.js";

// Random trees (valid names, arbitrary value bytes, random depth) survive write -> read unchanged.

const nodeChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,._+-");
const propChar = fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789,._+?#-");
const nodeName = fc
  .tuple(fc.string({ unit: nodeChar, minLength: 1, maxLength: 31 }), fc.option(fc.string({ unit: nodeChar, minLength: 1, maxLength: 8 })))
  .map(([base, unit]) => (unit === null ? base : `${base}@${unit}`));
const propName = fc.string({ unit: propChar, minLength: 1, maxLength: 31 });
const properties = fc.uniqueArray(fc.record({ name: propName, value: fc.uint8Array({ maxLength: 40 }) }), { selector: (p) => p.name, maxLength: 6 });

/** Nodes at most `depth` levels deep. */
function nodeOfDepth(depth: number): fc.Arbitrary<FdtNode> {
  const children = depth === 0 ? fc.constant([] as FdtNode[]) : fc.uniqueArray(nodeOfDepth(depth - 1), { selector: (n) => n.name, maxLength: 3 });
  return fc.record({ name: nodeName, properties, children });
}
const node = nodeOfDepth(3);

const tree: fc.Arbitrary<Devicetree> = fc.record({
  root: fc.record({ name: fc.constant(""), properties, children: fc.uniqueArray(node, { selector: (n) => n.name, maxLength: 4 }) }),
  // Any pair of u64s except {0, 0}, which ends the list.
  reservations: fc.array(
    fc.record({ address: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), size: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) }).filter((r) => r.address !== 0n || r.size !== 0n),
    { maxLength: 3 },
  ),
  bootCpuId: fc.nat({ max: 0xffff_ffff }),
});

describe("write -> read property", () => {
  it("any valid tree reads back equal (names, property bytes, order, reservations, boot CPU)", () => {
    fc.assert(
      fc.property(tree, (t) => {
        const dtb = writeDtb(t);
        const back = readDtb(dtb);
        expect(nodesEqual(back.root, t.root)).toBe(true);
        expect(back.reservations).toEqual(t.reservations);
        expect(back.bootCpuId).toBe(t.bootCpuId);
        // Writing what was read gives the same bytes.
        expect(writeDtb(back)).toEqual(dtb);
      }),
      { numRuns: 300 },
    );
  });
});
