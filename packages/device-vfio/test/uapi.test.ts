// linux/vfio.h's structures as src/uapi encodes and decodes them, against bytes written by hand from the header
// (test/kernel-abi.test.ts compares the layout table with the compiled header itself), and the decoders' refusals
// of what a hostile kernel-or-server reply could hold.
import { describe, expect, it } from "vitest";
import {
  CStruct,
  decodeDeviceInfo,
  decodeIommuType1Info,
  decodeIrqInfo,
  decodeRegionInfo,
  decodeType1DmaUnmap,
  encodeDeviceInfoRequest,
  encodeIommuType1InfoRequest,
  encodeIrqSet,
  encodeRegionInfoRequest,
  encodeType1DmaMap,
  encodeType1DmaUnmap,
  eventfdData,
  irqSetFields,
  VfioDecodeError,
  VfioIoctl,
  vfioStructLayouts,
} from "../src/uapi/index.js";
import { bytes, u16, u32, u64 } from "./support/wire.js";

const layout = (name: string) => vfioStructLayouts.find((entry) => entry.struct === name)!;
const offsets = (name: string) => Object.fromEntries(layout(name).fields.map((field) => [field.name, field.offset]));

describe("vfio structure layouts", () => {
  it("follow the C rules: natural alignment, tail padding, flexible arrays at their offset", () => {
    expect(layout("vfio_region_info").size).toBe(32);
    expect(offsets("vfio_region_info")).toEqual({ argsz: 0, flags: 4, index: 8, cap_offset: 12, size: 16, offset: 24 });
    expect(layout("vfio_iommu_type1_info")).toMatchObject({ size: 24 }); // 20 bytes of members, padded to 8
    expect(layout("vfio_irq_set").size).toBe(20);
    expect(layout("vfio_irq_set").fields.at(-1)).toEqual({ name: "data", offset: 20, size: 0, flexible: true });
    expect(layout("vfio_region_info_cap_sparse_mmap").fields.at(-1)).toEqual({ name: "areas", offset: 16, size: 0, flexible: true });
    expect(layout("vfio_iommu_type1_info_dma_avail").size).toBe(12);
    expect(layout("vfio_iommu_type1_info_cap_migration")).toMatchObject({ size: 32 });
    expect(offsets("vfio_iommu_type1_info_cap_migration")).toEqual({ header: 0, flags: 8, pgsize_bitmap: 16, max_dirty_bitmap_size: 24 });
    const padded = new CStruct("padded", { a: "u8", b: "u64", c: "u16" });
    expect([padded.size, padded.offsets.b, padded.offsets.c]).toEqual([24, 8, 16]);
  });

  it("number the ioctls _IO(';', 100 + n)", () => {
    expect(VfioIoctl.GET_API_VERSION).toBe(0x3b64);
    expect(VfioIoctl.DEVICE_GET_REGION_INFO).toBe(0x3b6c);
    expect(VfioIoctl.IOMMU_MAP_DMA).toBe(0x3b71);
  });

  it("refuse values that do not fit a member when encoding", () => {
    expect(() => encodeRegionInfoRequest(-1)).toThrow(RangeError);
    expect(() => encodeRegionInfoRequest(2 ** 32)).toThrow(/vfio_region_info\.index must be from 0 to 4294967295/);
    expect(() => encodeRegionInfoRequest(0, 16)).toThrow(/needs at least 32 bytes/);
    expect(() => encodeType1DmaMap({ vaddr: -1n, iova: 0, size: 4096, readable: true, writable: true })).toThrow(/vaddr must be a bigint/);
  });
});

describe("device info", () => {
  it("encodes requests of the kernel's and vfio-user's sizes", () => {
    expect(encodeDeviceInfoRequest()).toEqual(bytes(u32(20), u32(0), u32(0), u32(0), u32(0)));
    expect(encodeDeviceInfoRequest(16)).toEqual(bytes(u32(16), u32(0), u32(0), u32(0)));
    expect(() => encodeDeviceInfoRequest(12)).toThrow(/argsz >= 16/);
  });

  it("decodes a 16-byte reply and reads cap_offset only when flagged and present", () => {
    expect(decodeDeviceInfo(bytes(u32(16), u32(3), u32(9), u32(5)))).toEqual({ argsz: 16, flags: 3, numRegions: 9, numIrqs: 5, capOffset: 0 });
    expect(decodeDeviceInfo(bytes(u32(20), u32(0x83), u32(9), u32(5), u32(20))).capOffset).toBe(20);
    expect(decodeDeviceInfo(bytes(u32(20), u32(0x03), u32(9), u32(5), u32(20))).capOffset).toBe(0);
    expect(decodeDeviceInfo(bytes(u32(16), u32(0x83), u32(9), u32(5), u32(20))).capOffset).toBe(0);
    expect(() => decodeDeviceInfo(bytes(u32(16), u32(3), u32(9)))).toThrow(VfioDecodeError);
  });
});

describe("region info", () => {
  const header = (argsz: number, flags: number, capOffset: number, size = 0x4000) => bytes(u32(argsz), u32(flags), u32(2), u32(capOffset), u64(size), u64(0x20000));
  const cap = (id: number, next: number, ...body: (readonly number[])[]) => bytes(u16(id), u16(1), u32(next), ...body);

  it("encodes a request with room for capabilities", () => {
    const request = encodeRegionInfoRequest(3, 64);
    expect(request).toEqual(bytes(u32(64), u32(0), u32(3), u32(0), u64(0), u64(0), new Uint8Array(32)));
  });

  it("decodes the sparse mmap and type capabilities, keeps unknown ones, drops empty areas", () => {
    const reply = bytes(
      header(32 + 8 + 64 + 16, 0xf, 32),
      cap(99, 40),
      cap(1, 104, u32(3), u32(0), u64(0), u64(0x1000), u64(0x2000), u64(0), u64(0x3000), u64(0x1000)),
      cap(2, 0, u32(1), u32(3)),
    );
    const info = decodeRegionInfo(reply);
    expect(info).toEqual({
      argsz: 120,
      flags: 0xf,
      index: 2,
      capOffset: 32,
      size: 0x4000,
      offset: 0x20000,
      truncated: false,
      sparseAreas: [{ offset: 0, size: 0x1000 }, { offset: 0x3000, size: 0x1000 }],
      type: { type: 1, subtype: 3 },
      msixMappable: false,
      capabilities: [{ id: 99, version: 1, offset: 32 }, { id: 1, version: 1, offset: 40 }, { id: 2, version: 1, offset: 104 }],
    });
  });

  it("says the capabilities did not fit when argsz is larger than the reply", () => {
    const info = decodeRegionInfo(header(200, 0xf, 0));
    expect(info.truncated).toBe(true);
    expect(info.argsz).toBe(200);
    expect(info.capabilities).toEqual([]);
  });

  it("sees MSIX_MAPPABLE", () => {
    expect(decodeRegionInfo(bytes(header(40, 0xf, 32), cap(3, 0))).msixMappable).toBe(true);
  });

  const hostile: [string, Uint8Array, RegExp][] = [
    ["fewer bytes than the structure", header(32, 3, 0).subarray(0, 31), /31 bytes, vfio_region_info needs at least 32/],
    ["an argsz below the structure", header(8, 3, 0), /argsz 8 is smaller than vfio_region_info's 32 bytes/],
    ["a chain that loops", bytes(header(48, 0xb, 32), cap(9, 40), cap(9, 32)), /loops back to offset 32/],
    ["a capability pointing to itself", bytes(header(40, 0xb, 32), cap(9, 32)), /loops back to offset 32/],
    ["a capability past the end", bytes(header(40, 0xb, 32), cap(9, 4096)), /offset 4096 lies outside the 40 bytes/],
    ["a capability beyond argsz though the bytes go on", bytes(header(40, 0xb, 32), cap(9, 40), cap(9, 0)), /offset 40 lies outside the 40 bytes/],
    ["a capability inside the structure", bytes(header(40, 0xb, 16), cap(9, 0)), /offset 16 would overlap the 32-byte structure/],
    ["a sparse capability cut short", bytes(header(44, 0xf, 32), cap(1, 0, u32(1))), /needs 16 bytes, only 12 remain/],
    ["more areas than bytes", bytes(header(64, 0xf, 32), cap(1, 0, u32(2), u32(0), u64(0), u64(0x1000))), /claims 2 vfio_region_sparse_mmap_area entries, the reply has room for 1/],
    ["a count that would overflow a 32-bit size", bytes(header(64, 0xf, 32), cap(1, 0, u32(0x1000_0001), u32(0), u64(0), u64(0x1000))), /claims 268435457/],
    ["an area past the region", bytes(header(64, 0xf, 32), cap(1, 0, u32(1), u32(0), u64(0x3000), u64(0x2000))), /\[0x3000, \+0x2000\) lies outside the 0x4000-byte region/],
    ["an area whose end wraps", bytes(header(64, 0xf, 32), cap(1, 0, u32(1), u32(0), u64(0x1000), u64(2n ** 53n - 1n))), /lies outside/],
    ["an area offset beyond 2^53", bytes(header(64, 0xf, 32), cap(1, 0, u32(1), u32(0), u64(2n ** 63n), u64(1))), /vfio_region_sparse_mmap_area\.offset is 0x8000000000000000, beyond 2\^53/],
    ["two sparse capabilities", bytes(header(64, 0xf, 32), cap(1, 48, u32(0), u32(0)), cap(1, 0, u32(0), u32(0))), /two sparse mmap capabilities/],
    ["a type capability cut short", bytes(header(44, 0xf, 32), cap(2, 0, u32(1))), /needs 16 bytes, only 12 remain/],
  ];
  for (const [what, reply, message] of hostile) {
    it(`refuses ${what}`, () => {
      expect(() => decodeRegionInfo(reply)).toThrowError(VfioDecodeError);
      expect(() => decodeRegionInfo(reply)).toThrow(message);
    });
  }
});

describe("IRQ info and IRQ set", () => {
  it("encodes irq info requests and decodes replies", () => {
    expect(decodeIrqInfo(bytes(u32(16), u32(0xf), u32(0), u32(1)))).toEqual({ argsz: 16, flags: 0xf, index: 0, count: 1 });
    expect(() => decodeIrqInfo(bytes(u32(16), u32(0xf)))).toThrow(VfioDecodeError);
  });

  it("maps each VfioIrqSet to vfio_irq_set's flags", () => {
    expect(irqSetFields({ action: "trigger", index: 2, start: 1, fds: [7, -1] })).toEqual({ flags: 0x24, index: 2, start: 1, count: 2, fds: [7, -1] });
    expect(irqSetFields({ action: "trigger", index: 2, start: 5, fds: [] })).toEqual({ flags: 0x21, index: 2, start: 0, count: 0, fds: [] });
    expect(irqSetFields({ action: "trigger-disable", index: 1 })).toEqual({ flags: 0x21, index: 1, start: 0, count: 0, fds: [] });
    expect(irqSetFields({ action: "mask", index: 0, start: 0, count: 1 })).toEqual({ flags: 0x09, index: 0, start: 0, count: 1, fds: [] });
    expect(irqSetFields({ action: "unmask", index: 0, start: 0, count: 1 })).toEqual({ flags: 0x11, index: 0, start: 0, count: 1, fds: [] });
    expect(irqSetFields({ action: "unmask-fd", index: 0, fd: 9 })).toEqual({ flags: 0x14, index: 0, start: 0, count: 1, fds: [9] });
    expect(() => irqSetFields({ action: "trigger", index: 2, start: 0, fds: [-2] })).toThrow(/fds or -1/);
    expect(() => irqSetFields({ action: "mask", index: 0, start: 2 ** 32 - 1, count: 2 })).toThrow(/start \+ count/);
  });

  it("encodes the kernel's DATA_EVENTFD array after the header", () => {
    const fields = irqSetFields({ action: "trigger", index: 2, start: 0, fds: [7, -1] });
    expect(encodeIrqSet(fields, eventfdData(fields.fds))).toEqual(bytes(u32(28), u32(0x24), u32(2), u32(0), u32(2), u32(7), u32(0xffff_ffff)));
    expect(encodeIrqSet(irqSetFields({ action: "trigger-disable", index: 1 }))).toEqual(bytes(u32(20), u32(0x21), u32(1), u32(0), u32(0)));
  });
});

describe("type1 DMA and IOMMU info", () => {
  it("encodes map and unmap and decodes the unmapped size", () => {
    expect(encodeType1DmaMap({ vaddr: 0x7f00_0000_0000n, iova: 0x10_0000, size: 0x2000, readable: true, writable: false })).toEqual(
      bytes(u32(32), u32(1), u64(0x7f00_0000_0000n), u64(0x10_0000), u64(0x2000)),
    );
    expect(encodeType1DmaUnmap(0x10_0000, 0x2000)).toEqual(bytes(u32(24), u32(0), u64(0x10_0000), u64(0x2000)));
    expect(decodeType1DmaUnmap(bytes(u32(24), u32(0), u64(0x10_0000), u64(0x1000)))).toEqual({ flags: 0, iova: 0x10_0000, size: 0x1000 });
  });

  it("decodes page sizes, IOVA ranges, DMA mappings left and the migration capability", () => {
    expect(encodeIommuType1InfoRequest(128).length).toBe(128);
    const reply = bytes(
      u32(24 + 48 + 12 + 4 + 32), u32(3), u64(0xffff_ffff_ffff_f000n), u32(24), u32(0),
      u16(1), u16(1), u32(72), u32(2), u32(0), u64(0), u64(0xfedf_ffff), u64(0xfef0_0000), u64(0xffff_ffff_ffff_ffffn),
      u16(3), u16(1), u32(88), u32(65535), u32(0),
      u16(2), u16(1), u32(0), u32(1), u32(0), u64(0x1000), u64(0x1000_0000),
    );
    expect(decodeIommuType1Info(reply)).toMatchObject({
      flags: 3,
      truncated: false,
      iovaPgsizes: 0xffff_ffff_ffff_f000n,
      iovaRanges: [{ start: 0n, end: 0xfedf_ffffn }, { start: 0xfef0_0000n, end: 0xffff_ffff_ffff_ffffn }],
      dmaAvail: 65535,
      migration: { flags: 1, pgsizeBitmap: 0x1000n, maxDirtyBitmapSize: 0x1000_0000 },
    });
    expect(decodeIommuType1Info(bytes(u32(200), u32(3), u64(0x1000), u32(0), u32(0))).truncated).toBe(true);
    expect(() => decodeIommuType1Info(bytes(u32(56), u32(2), u64(0), u32(24), u32(0), u16(1), u16(1), u32(0), u32(1), u32(0), u64(9), u64(8)))).toThrow(/ends before it starts/);
  });
});
