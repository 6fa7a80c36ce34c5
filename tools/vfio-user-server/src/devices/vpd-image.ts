const TAG_IDENTIFIER = 0x82;
const TAG_VPD_R = 0x90;
const TAG_END = 0x78;

/**
 * Vital product data in the PCI format: the identifier string, a read-only (VPD-R) section of keywords closed by
 * "RV", whose first byte makes the sum of every byte from the start through itself 0, and the end tag. Padded with
 * zeros to `size`.
 */
export function buildVpdImage(identifier: string, keywords: Readonly<Record<string, string>>, size = 256): Uint8Array {
  const out: number[] = [];
  const large = (tag: number, body: number[]): void => {
    out.push(tag, body.length & 0xff, body.length >>> 8, ...body);
  };
  const text = (s: string): number[] => [...s].map((c) => c.charCodeAt(0) & 0x7f);
  large(TAG_IDENTIFIER, text(identifier));
  const fields: number[] = [];
  for (const [key, value] of Object.entries(keywords)) {
    if (key.length !== 2 || value.length > 255) throw new RangeError(`VPD keyword ${key} is not two characters with up to 255 bytes`);
    fields.push(...text(key), value.length, ...text(value));
  }
  // "RV": a checksum byte and one reserved byte; the section's header is 3 bytes before the fields.
  const rvAt = out.length + 3 + fields.length;
  fields.push(...text("RV"), 2, 0, 0);
  large(TAG_VPD_R, fields);
  const checksumAt = rvAt + 3;
  const sum = out.slice(0, checksumAt).reduce((a, b) => a + b, 0);
  out[checksumAt] = (0x100 - (sum & 0xff)) & 0xff;
  out.push(TAG_END);
  if (out.length > size) throw new RangeError(`VPD of ${out.length} bytes does not fit ${size}`);
  const image = new Uint8Array(size);
  image.set(out);
  return image;
}
