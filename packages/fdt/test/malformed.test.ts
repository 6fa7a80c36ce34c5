import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FdtBuilder, FdtError, readDtb, writeDtb } from "../src/index.js";

// The reader takes DTBs from files: every malformed input is an FdtError naming what is wrong, never a RangeError
// or a TypeError, and never a tree read past the buffer.

const sample = writeDtb(
  new FdtBuilder()
    .reserve(0x4000_0000, 0x1000)
    .root((r) =>
      r
        .u32("#address-cells", 2)
        .u32("#size-cells", 2)
        .string("compatible", "linux,dummy-virt")
        .node("memory@80000000", (m) => m.string("device_type", "memory").reg([{ address: 0x8000_0000, size: 0x1000_0000 }]))
        .node("chosen", (c) => c.string("bootargs", "console=ttyS0")),
    )
    .build(),
);

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const field = (b: Uint8Array, offset: number) => view(b).getUint32(offset);
function patched(offset: number, value: number, bytes = sample): Uint8Array {
  const copy = Uint8Array.from(bytes);
  view(copy).setUint32(offset, value);
  return copy;
}
const structOff = field(sample, 8);

/** Rebuilds a DTB around a hand-made structure block (tokens as words, strings as given). */
function withStructure(words: (number | string)[], strings = "a\0"): Uint8Array {
  const struct: number[] = [];
  for (const w of words) {
    if (typeof w === "number") struct.push((w >>> 24) & 0xff, (w >>> 16) & 0xff, (w >>> 8) & 0xff, w & 0xff);
    else {
      const bytes = [...w].map((c) => c.charCodeAt(0));
      struct.push(...bytes, 0);
      while (struct.length % 4 !== 0) struct.push(0);
    }
  }
  const stringsBytes = [...strings].map((c) => c.charCodeAt(0));
  const total = 40 + 16 + struct.length + stringsBytes.length;
  const out = new Uint8Array(total);
  const v = view(out);
  [0xd00dfeed, total, 56, 56 + struct.length, 40, 17, 16, 0, stringsBytes.length, struct.length].forEach((w, i) => v.setUint32(i * 4, w));
  out.set(struct, 56);
  out.set(stringsBytes, 56 + struct.length);
  return out;
}

describe("readDtb refuses malformed input with FdtError", () => {
  it.each([
    ["an empty buffer", new Uint8Array(0), /too short for a DTB header/],
    ["bad magic", patched(0, 0xfeedd00d), /bad magic 0xfeedd00d/],
    ["totalsize past the buffer", patched(4, sample.length + 1), /beyond the \d+ bytes given/],
    ["totalsize inside the header", patched(4, 8), /smaller than the header/],
    ["version 15", patched(20, 15), /older than 16/],
    ["last_comp_version 18", patched(24, 18), /compatible back to version 18/],
    ["the structure block past totalsize", patched(36, sample.length - structOff + 4), /structure block .* runs past totalsize/],
    ["a misaligned structure block", patched(8, structOff + 2), /not 4-byte aligned/],
    ["the structure offset inside the header", patched(8, 8), /outside the DTB/],
    ["the strings block past totalsize", patched(32, field(sample, 32) + 1), /strings block .* runs past totalsize/],
    ["a misaligned reservation block", patched(16, 44), /not 8-byte aligned/],
    ["a reservation block without its terminator", patched(16, Math.floor((sample.length - 8) / 8) * 8), /no terminating entry|runs past|outside/],
    ["an unknown token", withStructure([1, "", 7, 2, 9]), /unknown structure token 0x7/],
    ["END before the root", withStructure([9]), /END before any root node/],
    ["END inside a node", withStructure([1, "", 9]), /END inside \//],
    ["END_NODE without BEGIN_NODE", withStructure([1, "", 2, 2, 9]), /END_NODE without a matching BEGIN_NODE/],
    ["a second root", withStructure([1, "", 2, 1, "", 2, 9]), /a second root node/],
    ["a named root", withStructure([1, "x", 2, 9]), /root node is named "x"/],
    ["a property outside any node", withStructure([3, 0, 0, 9]), /a property outside any node/],
    ["a property value past the block", withStructure([1, "", 3, 100, 0, 2, 9]), /runs past the structure block/],
    ["a property name offset past the strings", withStructure([1, "", 3, 0, 10, 2, 9]), /outside the strings block/],
    ["a property name without its NUL", withStructure([1, "", 3, 0, 0, 2, 9], "ab"), /not NUL-terminated/],
    ["a property after a child node", withStructure([1, "", 1, "n", 2, 3, 0, 0, 2, 9]), /property "a" after a child node/],
    ["a property twice", withStructure([1, "", 3, 0, 0, 3, 0, 0, 2, 9]), /"a" appears twice/],
    ["a node twice", withStructure([1, "", 1, "n", 2, 1, "n", 2, 2, 9]), /node "n" appears twice/],
    ["an invalid node name", withStructure([1, "", 1, "a b", 2, 2, 9]), /not a valid node name/],
    ["an invalid property name", withStructure([1, "", 3, 0, 0, 2, 9], "a=b\0"), /not a valid property name/],
    ["a structure block that stops inside a token", withStructure([1, ""]), /ends inside a 32-bit word/],
  ])("%s", (_what, bytes, message) => {
    let error: unknown;
    try {
      readDtb(bytes);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FdtError);
    expect((error as Error).message).toMatch(message);
  });

  it("a node name that runs to the end of the structure block", () => {
    const bytes = withStructure([1, ""]);
    // The root's name (the word after BEGIN_NODE) filled with letters: no NUL before the block ends.
    bytes.set([0x61, 0x61, 0x61, 0x61], 60);
    expect(() => readDtb(bytes)).toThrow(/not NUL-terminated/);
  });

  it("reads NOP tokens anywhere between tokens", () => {
    const tree = readDtb(withStructure([4, 1, "", 4, 3, 0, 0, 4, 1, "n", 4, 2, 4, 2, 4, 9]));
    expect(tree.root.properties.map((p) => p.name)).toEqual(["a"]);
    expect(tree.root.children.map((c) => c.name)).toEqual(["n"]);
  });

  it("every truncation of a valid DTB is refused with FdtError", () => {
    for (let n = 0; n < sample.length; n++) {
      expect(() => readDtb(sample.subarray(0, n)), `first ${n} bytes`).toThrow(FdtError);
    }
  });

  it("random corruption either reads or throws FdtError (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: sample.length - 1 }), fc.nat({ max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const copy = Uint8Array.from(sample);
        for (const [at, value] of edits) copy[at] = value;
        try {
          readDtb(copy);
        } catch (e) {
          expect(e).toBeInstanceOf(FdtError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("random header words either read or throw FdtError (property)", () => {
    fc.assert(
      fc.property(fc.nat({ max: 9 }), fc.nat({ max: 0xffff_ffff }), (index, value) => {
        try {
          readDtb(patched(index * 4, value));
        } catch (e) {
          expect(e).toBeInstanceOf(FdtError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
