// Synthetic arm64 Image files: the 64-byte header of booting.rst around a body of `fileSize` bytes.

export interface ImageFields {
  textOffset?: bigint | number;
  imageSize?: bigint | number;
  flags?: bigint | number;
  magic?: number;
  fileSize?: number;
}

export function image(f: ImageFields = {}): Uint8Array {
  const bytes = new Uint8Array(f.fileSize ?? 0x1000);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, 0x14000010, true); // code0: b +0x40 (what a real Image starts with; never executed here)
  view.setBigUint64(0x08, BigInt(f.textOffset ?? 0), true);
  view.setBigUint64(0x10, BigInt(f.imageSize ?? 0x10_0000), true);
  view.setBigUint64(0x18, BigInt(f.flags ?? 0b1010), true); // 4K pages, place anywhere
  view.setUint32(0x38, f.magic ?? 0x644d5241, true);
  return bytes;
}
