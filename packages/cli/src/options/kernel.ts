import { ConfigurationError } from "@vmm/core";

/** How a kernel image is loaded: a Linux bzImage, an ELF64 executable, or a raw binary (kvmtool's flat load). */
export type KernelImageKind = "bzimage" | "elf64" | "raw";

const HDRS_OFFSET = 0x202;
const HDRS = [0x48, 0x64, 0x72, 0x53]; // "HdrS": the Linux boot protocol setup header magic
const ELF = [0x7f, 0x45, 0x4c, 0x46]; // 0x7F 'E' 'L' 'F'
const ELFCLASS64 = 2;

function matches(bytes: Uint8Array, at: number, magic: readonly number[]): boolean {
  return bytes.length >= at + magic.length && magic.every((b, i) => bytes[at + i] === b);
}

/** Detects the kind of a kernel image from its first bytes. An ELF that is not 64-bit is refused. */
export function detectKernelKind(bytes: Uint8Array, path = "kernel"): KernelImageKind {
  if (matches(bytes, 0, ELF)) {
    if (bytes[4] !== ELFCLASS64) throw new ConfigurationError(`kernel '${path}' is a 32-bit ELF; only ELF64 images are loaded`);
    return "elf64";
  }
  if (matches(bytes, HDRS_OFFSET, HDRS)) return "bzimage";
  return "raw";
}
