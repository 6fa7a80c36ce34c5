import { ConfigurationError, type GuestArchitecture } from "@vmm/core";

/**
 * How a kernel image is loaded: on x86_64 a Linux bzImage, an ELF64 executable, or a raw binary (kvmtool's flat
 * load); on arm64 a Linux Image (or Image.gz), which the arm64 machine parses itself.
 */
export type KernelImageKind = "bzimage" | "elf64" | "raw" | "arm64-image";

const HDRS_OFFSET = 0x202;
const HDRS = [0x48, 0x64, 0x72, 0x53]; // "HdrS": the Linux boot protocol setup header magic
const ELF = [0x7f, 0x45, 0x4c, 0x46]; // 0x7F 'E' 'L' 'F'
const ELFCLASS64 = 2;
const ARM64_MAGIC_OFFSET = 0x38;
const ARM64_MAGIC = [0x41, 0x52, 0x4d, 0x64]; // "ARM\x64" (booting.rst's image header)
const GZIP = [0x1f, 0x8b];

function matches(bytes: Uint8Array, at: number, magic: readonly number[]): boolean {
  return bytes.length >= at + magic.length && magic.every((b, i) => bytes[at + i] === b);
}

/** Detects the kind of a kernel image from its first bytes. An ELF that is not 64-bit is refused. */
export function detectKernelKind(bytes: Uint8Array, path = "kernel", arch: GuestArchitecture = "x86_64"): KernelImageKind {
  if (arch === "arm64") {
    if (matches(bytes, ARM64_MAGIC_OFFSET, ARM64_MAGIC) || matches(bytes, 0, GZIP)) return "arm64-image";
    throw new ConfigurationError(`kernel '${path}' is not an arm64 Image: no "ARM\\x64" magic at 0x38 (and not gzip-compressed)`);
  }
  if (matches(bytes, 0, ELF)) {
    if (bytes[4] !== ELFCLASS64) throw new ConfigurationError(`kernel '${path}' is a 32-bit ELF; only ELF64 images are loaded`);
    return "elf64";
  }
  if (matches(bytes, HDRS_OFFSET, HDRS)) return "bzimage";
  if (matches(bytes, ARM64_MAGIC_OFFSET, ARM64_MAGIC)) throw new ConfigurationError(`kernel '${path}' is an arm64 Image; run it with --arch arm64`);
  return "raw";
}
