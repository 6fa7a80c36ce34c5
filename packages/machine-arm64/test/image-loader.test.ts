import { ConfigurationError } from "@vmm/core";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { buildArm64MemoryMap, loadArm64Image, parseArm64ImageHeader } from "../src/index.js";
import { completeLoadPlan, placeKernelAndInitrd } from "../src/loader/load-plan.js";
import { image } from "./images.js";

const MIB = 2 ** 20;
const GIB = 2 ** 30;

describe("parseArm64ImageHeader (booting.rst's 64-byte header)", () => {
  it("reads text_offset, image_size and the flags", () => {
    expect(parseArm64ImageHeader(image({ textOffset: 0x80000, imageSize: 0x200_0000, flags: 0b0111 }))).toEqual({
      textOffset: 0x80000,
      imageSize: 0x200_0000,
      legacy: false,
      bigEndian: true,
      pageSize: 65536,
      placeAnywhere: false,
    });
    expect(parseArm64ImageHeader(image({ flags: 0b1010 }))).toMatchObject({ bigEndian: false, pageSize: 4096, placeAnywhere: true });
    expect(parseArm64ImageHeader(image({ flags: 0b0100 }))).toMatchObject({ pageSize: 16384 });
    expect(parseArm64ImageHeader(image({ flags: 0 })).pageSize).toBeUndefined();
  });

  it("a pre-3.17 header (image_size 0): text_offset 0x80000 and the file's length", () => {
    expect(parseArm64ImageHeader(image({ imageSize: 0, textOffset: 0, fileSize: 0x3000 }))).toMatchObject({ legacy: true, textOffset: 0x80000, imageSize: 0x3000 });
  });

  it.each([
    ["too short", image().subarray(0, 63), /63 bytes, too short for an arm64 Image header/],
    ["no magic", image({ magic: 0x12345678 }), /not an arm64 Image: no "ARM\\x64" magic at 0x38 \(found 0x12345678\)/],
    ["an x86 bzImage-like file", new Uint8Array(4096).fill(0x90), /not an arm64 Image/],
    ["text_offset of 2 MiB", image({ textOffset: 2 * MIB }), /text_offset 0x200000 is not below 2 MiB/],
    ["text_offset near 2^64", image({ textOffset: 2n ** 64n - 1n }), /text_offset 0xffffffffffffffff is not below 2 MiB/],
    ["image_size smaller than the file", image({ imageSize: 0x800, fileSize: 0x1000 }), /image_size 0x800 is smaller than the file \(0x1000 bytes\)/],
    ["image_size near 2^64", image({ imageSize: 2n ** 64n - 1n }), /not a plausible size/],
  ])("refuses %s", (_what, bytes, message) => {
    expect(() => parseArm64ImageHeader(bytes)).toThrow(ConfigurationError);
    expect(() => parseArm64ImageHeader(bytes)).toThrow(message);
  });
});

describe("loadArm64Image", () => {
  it("takes an Image as it is", () => {
    const bytes = image();
    const loaded = loadArm64Image(bytes, GIB);
    expect(loaded.format).toBe("Image");
    expect(loaded.bytes).toBe(bytes);
  });

  it("decompresses an Image.gz (Debian's vmlinuz), bounded by RAM", () => {
    const bytes = image({ fileSize: 0x4000, imageSize: 0x8000 });
    const loaded = loadArm64Image(gzipSync(bytes), GIB);
    expect(loaded.format).toBe("Image.gz");
    expect(loaded.bytes).toEqual(bytes);
    expect(loaded.header.imageSize).toBe(0x8000);
    expect(() => loadArm64Image(gzipSync(bytes), 0x1000)).toThrow(/gzip data that does not decompress to at most 0x1000 bytes/);
    expect(() => loadArm64Image(gzipSync(new Uint8Array(100)), GIB)).toThrow(/^the kernel \(decompressed\) is not an arm64 Image/);
    expect(() => loadArm64Image(gzipSync(new Uint8Array(10)), GIB)).toThrow(/\(decompressed\) is 10 bytes, too short/);
    expect(() => loadArm64Image(Uint8Array.from([0x1f, 0x8b, 8, 0, 1, 2, 3]), GIB)).toThrow(ConfigurationError);
  });

  it("refuses an EFI zboot image", () => {
    const zboot = new Uint8Array(0x100);
    zboot.set([0x4d, 0x5a, 0, 0, 0x7a, 0x69, 0x6d, 0x67]); // "MZ" .. "zimg"
    expect(() => loadArm64Image(zboot, GIB)).toThrow(/EFI zboot image/);
  });
});

describe("the load plan", () => {
  const map = buildArm64MemoryMap({ ramSize: 64 * MIB, cpus: 1 });

  it("kernel at RAM's 2 MiB aligned base + text_offset, initrd after image_size, DTB on the next 2 MiB boundary, entry with x0 = DTB", () => {
    const loaded = loadArm64Image(image({ textOffset: 0x80000, imageSize: 0x150_0000 }), map.ram.size);
    const placed = placeKernelAndInitrd(map, loaded, 0x12_3456);
    const plan = completeLoadPlan(map, placed, 0x3000);
    expect(plan.kernel.gpa).toBe(0x8008_0000);
    expect(plan.kernel.imageSize).toBe(0x150_0000);
    // initrd: after the kernel's image_size (0x80080000 + 0x1500000 = 0x81580000), 64 KiB aligned.
    expect(plan.initrd).toEqual({ base: 0x8158_0000, size: 0x12_3456 });
    expect(plan.dtb).toEqual({ base: 0x8180_0000, size: 0x3000 });
    expect(plan.entry).toEqual({ pc: 0x8008_0000, x0: 0x8180_0000 });
  });

  it("without an initrd the DTB follows the kernel", () => {
    const plan = completeLoadPlan(map, placeKernelAndInitrd(map, loadArm64Image(image({ imageSize: 0x30_0000 }), map.ram.size)), 0x1000);
    expect(plan.initrd).toBeUndefined();
    expect(plan.dtb.base).toBe(0x8040_0000);
  });

  it("refuses what does not fit, naming what and where", () => {
    const big = loadArm64Image(image({ imageSize: 63 * MIB }), map.ram.size);
    expect(() => placeKernelAndInitrd(map, big)).not.toThrow();
    expect(() => placeKernelAndInitrd(map, loadArm64Image(image({ imageSize: 65 * MIB }), map.ram.size))).toThrow(
      /^the kernel \(image_size 0x4100000 at text_offset 0x0\) needs 0x80000000-0x84100000, past the end of RAM 0x80000000-0x84000000; give the VM more memory$/,
    );
    expect(() => placeKernelAndInitrd(map, big, 2 * MIB)).toThrow(/^the initrd \(2097152 bytes, after the kernel\) needs 0x83f00000-0x84100000, past the end of RAM/);
    expect(() => completeLoadPlan(map, placeKernelAndInitrd(map, big), 0x1000)).toThrow(/^the devicetree \(4096 bytes, on the 2 MiB boundary after the kernel\) needs 0x84000000-0x84001000, past the end of RAM/);
    expect(() => completeLoadPlan(map, placeKernelAndInitrd(map, big), 3 * MIB)).toThrow(/takes at most 2097152/);
  });

  it("refuses an initrd that leaves the 1 GiB aligned 32 GiB window of the kernel", () => {
    const huge = buildArm64MemoryMap({ ramSize: 40 * GIB, cpus: 1 });
    const kernel = loadArm64Image(image(), huge.ram.size);
    expect(() => placeKernelAndInitrd(huge, kernel, 31 * GIB)).not.toThrow();
    expect(() => placeKernelAndInitrd(huge, kernel, 32 * GIB)).toThrow(/do not fit in one 1 GiB aligned 32 GiB window \(from 0x80000000\)/);
  });
});
