import { ConfigurationError } from "@vmm/core";
import { gunzipSync } from "node:zlib";

// The arm64 Linux Image header (Documentation/arch/arm64/booting.rst): 64 bytes, little-endian.
//   0x00 code0, 0x04 code1, 0x08 text_offset (u64), 0x10 image_size (u64), 0x18 flags (u64),
//   0x20-0x37 reserved, 0x38 magic "ARM\x64", 0x3c reserved (the PE header offset of EFI-stub kernels).

export const ARM64_IMAGE_MAGIC = 0x644d5241; // "ARM\x64" read little-endian
export const ARM64_IMAGE_HEADER_SIZE = 64;
const MIB = 1024 * 1024;
/** What booting.rst says to assume for text_offset when image_size is 0 (kernels before 3.17). */
const LEGACY_TEXT_OFFSET = 0x80000;

export interface Arm64ImageHeader {
  /** Bytes from the 2 MiB aligned base to where the Image goes. */
  readonly textOffset: number;
  /**
   * Bytes from the Image's start the kernel needs free (text, data and bss): `image_size`, or the file's length for
   * a pre-3.17 header whose image_size is 0 (then its bss is unknown).
   */
  readonly imageSize: number;
  /** image_size was 0: a pre-3.17 kernel, text_offset assumed 0x80000. */
  readonly legacy: boolean;
  /** flags bit 0: a big-endian kernel. */
  readonly bigEndian: boolean;
  /** flags bits 1-2: the kernel's page size, undefined when unspecified. */
  readonly pageSize?: 4096 | 16384 | 65536;
  /**
   * flags bit 3: the 2 MiB aligned base may be anywhere in RAM; when false it should be as close as possible to the
   * start of RAM (memory below it is not usable). The load plan uses RAM's base either way.
   */
  readonly placeAnywhere: boolean;
}

const PAGE_SIZES = [undefined, 4096, 16384, 65536] as const;

/** Parses the header of an uncompressed Image; throws ConfigurationError naming what is wrong. */
export function parseArm64ImageHeader(image: Uint8Array, what = "the kernel"): Arm64ImageHeader {
  if (image.length < ARM64_IMAGE_HEADER_SIZE) throw new ConfigurationError(`${what} is ${image.length} bytes, too short for an arm64 Image header (64 bytes)`);
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const magic = view.getUint32(0x38, true);
  if (magic !== ARM64_IMAGE_MAGIC) {
    throw new ConfigurationError(`${what} is not an arm64 Image: no "ARM\\x64" magic at 0x38 (found 0x${magic.toString(16).padStart(8, "0")})`);
  }
  const u64 = (offset: number) => view.getBigUint64(offset, true);
  const rawTextOffset = u64(0x08);
  const rawImageSize = u64(0x10);
  const flags = u64(0x18);
  const legacy = rawImageSize === 0n;
  const textOffset = legacy ? LEGACY_TEXT_OFFSET : rawTextOffset;
  if (textOffset >= BigInt(2 * MIB)) {
    throw new ConfigurationError(`${what}: text_offset 0x${textOffset.toString(16)} is not below 2 MiB (the Image goes text_offset bytes above a 2 MiB aligned base)`);
  }
  if (!legacy && rawImageSize < BigInt(image.length)) {
    throw new ConfigurationError(`${what}: image_size 0x${rawImageSize.toString(16)} is smaller than the file (0x${image.length.toString(16)} bytes): a corrupt header`);
  }
  if (rawImageSize > BigInt(Number.MAX_SAFE_INTEGER)) throw new ConfigurationError(`${what}: image_size 0x${rawImageSize.toString(16)} is not a plausible size`);
  return {
    textOffset: Number(textOffset),
    imageSize: legacy ? image.length : Number(rawImageSize),
    legacy,
    bigEndian: (flags & 1n) === 1n,
    pageSize: PAGE_SIZES[Number((flags >> 1n) & 3n)],
    placeAnywhere: ((flags >> 3n) & 1n) === 1n,
  };
}

export interface Arm64Image {
  /** The bytes to copy into guest RAM (decompressed when the file was gzip). */
  readonly bytes: Uint8Array;
  readonly header: Arm64ImageHeader;
  /** "Image" or "Image.gz" (what the file was). */
  readonly format: "Image" | "Image.gz";
}

/**
 * An arm64 kernel as a file holds it: an Image, or an Image.gz (Debian's vmlinuz) that is decompressed here, at most
 * `maxBytes` of it. An EFI zboot image (Image with its own decompressor, "zimg" at 4) is refused: it needs EFI.
 */
export function loadArm64Image(file: Uint8Array, maxBytes: number, what = "the kernel"): Arm64Image {
  if (file.length >= 8 && file[0] === 0x4d && file[1] === 0x5a && String.fromCharCode(...file.subarray(4, 8)) === "zimg") {
    throw new ConfigurationError(`${what} is an EFI zboot image, which only EFI firmware can start; give the uncompressed Image or Image.gz`);
  }
  if (file.length >= 2 && file[0] === 0x1f && file[1] === 0x8b) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(gunzipSync(file, { maxOutputLength: maxBytes }));
    } catch (e) {
      throw new ConfigurationError(`${what} is gzip data that does not decompress to at most 0x${maxBytes.toString(16)} bytes: ${(e as Error).message}`);
    }
    return { bytes, header: parseArm64ImageHeader(bytes, `${what} (decompressed)`), format: "Image.gz" };
  }
  return { bytes: file, header: parseArm64ImageHeader(file, what), format: "Image" };
}
