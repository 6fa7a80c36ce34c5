/** FACS size and alignment (ACPI 6.5, 5.2.10): 64 bytes, 64-byte aligned. It has no checksum. */
export const FACS_SIZE = 64;
export const FACS_ALIGN = 64;
/** FACS version 2 (ACPI 4.0 and later). */
const FACS_VERSION = 2;

/**
 * The Firmware ACPI Control Structure a platform with fixed hardware has: no hardware signature (nothing to
 * compare across a resume), no waking vector (no S3/S4), the global lock free, no S4BIOS and no 64-bit wake.
 */
export function buildFacs(): Uint8Array {
  const facs = new Uint8Array(FACS_SIZE);
  const v = new DataView(facs.buffer);
  facs.set([..."FACS"].map((c) => c.charCodeAt(0)), 0);
  v.setUint32(4, FACS_SIZE, true); // Length
  // 8 hardware signature, 12 firmware waking vector, 16 global lock, 20 flags, 24 X_Firmware_Waking_Vector: all 0
  facs[32] = FACS_VERSION;
  // 36 OSPM flags, 40-63 reserved: 0
  return facs;
}
