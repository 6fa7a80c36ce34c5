import { ConfigurationError, type MappedRegion, type MemoryMapper } from "@vmm/core";
import type { EntryState } from "../x86_64/cpu-state.js";
import { Layout } from "../x86_64/memory-map.js";

/** The largest firmware image: from 4 GiB - 256 KiB up, just above KVM's TSS and identity-map pages. */
export const FIRMWARE_MAX = 0x4_0000;
/** How much of the image's end is also visible below 1 MiB (0xE0000-0xFFFFF), as on a PC. */
export const FIRMWARE_LEGACY_ALIAS = 0x2_0000;

export interface MappedFirmware {
  /** Guest-physical address of the image's first byte (4 GiB - size). */
  readonly base: number;
  /** The image as mapped (read-only to the guest). */
  readonly bytes: Uint8Array;
  /** The image's last 128 KiB (or all of a smaller image), seen at 0x100000 - its length through PAM. */
  readonly legacy: Uint8Array;
  readonly region: MappedRegion;
}

/** Checks a firmware image: whole pages, at most 256 KiB. */
export function checkFirmware(image: Uint8Array, what = "firmware"): void {
  if (image.length === 0 || image.length % 4096) {
    throw new ConfigurationError(`${what}: ${image.length} bytes is not a whole number of 4 KiB pages (a flash image such as SeaBIOS's bios.bin is)`);
  }
  if (image.length > FIRMWARE_MAX) {
    throw new ConfigurationError(`${what}: ${image.length} bytes is more than the ${FIRMWARE_MAX / 1024} KiB this machine maps below 4 GiB`);
  }
}

/**
 * Maps a firmware image read-only at the top of 4 GiB (a write to it exits and is dropped), as a flash chip
 * decodes on a PC; the reset vector at 0xFFFFFFF0 is the image's 16th-last byte.
 */
export function mapFirmware(mapper: MemoryMapper, image: Uint8Array): MappedFirmware {
  checkFirmware(image);
  const bytes = mapper.allocate(image.length);
  bytes.set(image);
  const base = Layout.fourGiB - image.length;
  const region = mapper.map(base, bytes, { readonly: true });
  return { base, bytes, legacy: bytes.subarray(Math.max(0, bytes.length - FIRMWARE_LEGACY_ALIAS)), region };
}

/** The x86 reset state's entry: real mode, CS selector 0xF000 with base 0xFFFF0000, IP 0xFFF0. */
export function resetVectorEntry(): EntryState {
  const data = { base: 0, limit: 0xffff, selector: 0, type: 3, present: 1, dpl: 0, db: 0, s: 1, l: 0, g: 0, avl: 0 };
  return {
    mode: "real",
    regs: { rip: 0xfff0, rsp: 0, rflags: 0x2 },
    sregs: { cs: { ...data, selector: 0xf000, base: 0xffff_0000, type: 0xb }, ds: data, es: data, fs: data, gs: data, ss: data, cr0: 0x6000_0010, cr4: 0, efer: 0 },
  };
}
