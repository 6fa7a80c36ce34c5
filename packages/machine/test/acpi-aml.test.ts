import { describe, expect, it } from "vitest";
import {
  aPackage,
  buffer,
  device,
  eisaId,
  eisaIdValue,
  integer,
  name,
  nameSeg,
  nameString,
  ones,
  packageOf,
  pkgLengthValue,
  scope,
  string,
  varPackage,
  withPkgLength,
} from "../src/firmware/acpi/aml.js";
import {
  dwordAddressSpace,
  endTag,
  ioPorts,
  isaIrqs,
  memory32Fixed,
  qwordAddressSpace,
  resourceTemplate,
  wordAddressSpace,
} from "../src/firmware/acpi/aml-resources.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("AML encoder: PkgLength", () => {
  it("encodes values in 1 to 4 bytes at the boundaries", () => {
    expect([...pkgLengthValue(63, 1)]).toEqual([0x3f]);
    expect([...pkgLengthValue(64, 2)]).toEqual([0x40, 0x04]);
    expect([...pkgLengthValue(4095, 2)]).toEqual([0x4f, 0xff]);
    expect([...pkgLengthValue(4096, 3)]).toEqual([0x80, 0x00, 0x01]);
    expect([...pkgLengthValue(2 ** 20 - 1, 3)]).toEqual([0x8f, 0xff, 0xff]);
    expect([...pkgLengthValue(2 ** 20, 4)]).toEqual([0xc0, 0x00, 0x00, 0x01]);
    expect([...pkgLengthValue(2 ** 28 - 1, 4)]).toEqual([0xcf, 0xff, 0xff, 0xff]);
    expect(() => pkgLengthValue(64, 1)).toThrow(RangeError);
    expect(() => pkgLengthValue(4096, 2)).toThrow(RangeError);
    expect(() => pkgLengthValue(2 ** 28, 4)).toThrow(RangeError);
  });

  it("picks the shortest form that counts its own bytes", () => {
    // 62 bytes of body + 1 byte of PkgLength = 63: still one byte
    expect([...withPkgLength(new Uint8Array(62)).subarray(0, 1)]).toEqual([63]);
    // 63 bytes of body: 64 does not fit one byte, so two bytes and a total of 65
    expect([...withPkgLength(new Uint8Array(63)).subarray(0, 2)]).toEqual([0x41, 0x04]);
    expect(withPkgLength(new Uint8Array(63)).length).toBe(65);
    // 4093 + 2 = 4095 fits two bytes; 4094 needs three (total 4097)
    expect([...withPkgLength(new Uint8Array(4093)).subarray(0, 2)]).toEqual([0x4f, 0xff]);
    expect([...withPkgLength(new Uint8Array(4094)).subarray(0, 3)]).toEqual([0x81, 0x00, 0x01]);
  });
});

describe("AML encoder: names, data and objects", () => {
  it("encodes NameSegs and NamePaths with root, parent, dual and multi prefixes", () => {
    expect(hex(nameSeg("_SB"))).toBe("5f53425f");
    expect(hex(nameString("\\_SB"))).toBe("5c5f53425f");
    expect(hex(nameString("\\_SB.PCI0"))).toBe("5c2e5f53425f50434930");
    expect(hex(nameString("^^PCI0"))).toBe("5e5e50434930");
    expect(hex(nameString("\\_SB.PCI0.COM1"))).toBe("5c2f03" + "5f53425f" + "50434930" + "434f4d31");
    expect(hex(nameString("\\"))).toBe("5c00");
    for (const bad of ["1ABC", "ABCDE", "ab", "A.B."]) expect(() => nameString(bad)).toThrow(RangeError);
  });

  it("encodes integers in their shortest form", () => {
    expect(hex(integer(0))).toBe("00");
    expect(hex(integer(1))).toBe("01");
    expect(hex(ones())).toBe("ff");
    expect(hex(integer(2))).toBe("0a02");
    expect(hex(integer(0xff))).toBe("0aff");
    expect(hex(integer(0x100))).toBe("0b0001");
    expect(hex(integer(0xffff))).toBe("0bffff");
    expect(hex(integer(0x10000))).toBe("0c00000100");
    expect(hex(integer(0xffffffff))).toBe("0cffffffff");
    expect(hex(integer(0x80_0000_0000))).toBe("0e0000000080000000");
    expect(hex(integer(0xffff_ffff_ffff_ffffn))).toBe("0effffffffffffffff");
    expect(() => integer(-1)).toThrow(RangeError);
    expect(() => integer(2n ** 64n)).toThrow(RangeError);
  });

  it("encodes strings, buffers and packages", () => {
    expect(hex(string("AB"))).toBe("0d414200");
    expect(() => string("a\0b")).toThrow(RangeError);
    expect(hex(buffer(Uint8Array.of(0x79, 0)))).toBe("1105" + "0a02" + "7900");
    expect(hex(aPackage([integer(1), integer(0x10)]))).toBe("1205" + "02" + "01" + "0a10");
    expect(hex(varPackage([integer(0)]))).toBe("1303" + "01" + "00");
    expect(packageOf(Array.from({ length: 256 }, () => integer(0)))[0]).toBe(0x13);
    expect(packageOf(Array.from({ length: 255 }, () => integer(0)))[0]).toBe(0x12);
    expect(() => aPackage(Array.from({ length: 256 }, () => integer(0)))).toThrow(RangeError);
  });

  it("encodes Name, Scope and Device", () => {
    expect(hex(name("_UID", integer(0)))).toBe("08" + "5f554944" + "00");
    expect(hex(scope("\\_SB", []))).toBe("10" + "06" + "5c5f53425f");
    expect(hex(device("PCI0", [name("_UID", integer(0))]))).toBe("5b82" + "0b" + "50434930" + "085f55494400");
  });

  it("compresses EISA IDs", () => {
    expect(eisaIdValue("PNP0A08")).toBe(0x080ad041);
    expect(eisaIdValue("PNP0A03")).toBe(0x030ad041);
    expect(eisaIdValue("PNP0C02")).toBe(0x020cd041);
    expect(hex(eisaId("PNP0A08"))).toBe("0c41d00a08");
    for (const bad of ["PNP0A0", "pnp0a08", "PNP0G08"]) expect(() => eisaIdValue(bad)).toThrow(RangeError);
  });
});

describe("AML encoder: resource descriptors", () => {
  it("encodes a QWord memory window (prefetchable, producer, fixed min and max)", () => {
    const d = qwordAddressSpace({ type: "memory", caching: "prefetchable", min: 0x80_0000_0000, max: 0xff_ffff_ffff });
    expect(d.length).toBe(46);
    expect(hex(d)).toBe(
      "8a2b00" + // tag, length 43
        "00" + // memory
        "0c" + // MinFixed | MaxFixed, producer, positive decode
        "07" + // read-write, prefetchable
        "0000000000000000" + // granularity
        "0000000080000000" + // min
        "ffffffffff000000" + // max
        "0000000000000000" + // translation
        "0000000080000000", // length
    );
  });

  it("encodes Word bus number / IO and DWord memory descriptors", () => {
    expect(hex(wordAddressSpace({ type: "busNumber", min: 0, max: 255 }))).toBe("880d00" + "020c00" + "0000" + "0000" + "ff00" + "0000" + "0001");
    expect(hex(wordAddressSpace({ type: "io", min: 0x6200, max: 0xffff }))).toBe("880d00" + "010c03" + "0000" + "0062" + "ffff" + "0000" + "009e");
    expect(hex(dwordAddressSpace({ type: "memory", min: 0xc000_0000, max: 0xdfff_ffff }))).toBe(
      "871700" + "000c01" + "00000000" + "000000c0" + "ffffffdf" + "00000000" + "00000020",
    );
    expect(hex(dwordAddressSpace({ type: "memory", caching: "cacheable", consumer: true, min: 0, max: 0xfff })).slice(6, 12)).toBe("000d03");
    expect(() => wordAddressSpace({ type: "io", min: 0, max: 0x10000 })).toThrow(RangeError);
    expect(() => dwordAddressSpace({ type: "memory", min: 2, max: 1 })).toThrow(RangeError);
  });

  it("encodes IO, IRQ, Memory32Fixed and the End Tag in a checksum-free template", () => {
    expect(hex(ioPorts(0x3f8, 8))).toBe("4701f803f8030108");
    expect(() => ioPorts(0xfffc, 8)).toThrow(RangeError);
    expect(hex(isaIrqs([4]))).toBe("221000");
    expect(hex(isaIrqs([1, 12]))).toBe("220210"); // mask 0x1002
    expect(() => isaIrqs([16])).toThrow(RangeError);
    expect(hex(memory32Fixed(0xe000_0000, 0x1000_0000))).toBe("860900" + "01" + "000000e0" + "00000010");
    expect(hex(endTag())).toBe("7900");
    expect(hex(resourceTemplate([isaIrqs([4])]))).toBe("1108" + "0a05" + "221000" + "7900");
  });
});
