/**
 * A PCI expansion ROM image (PCI Firmware 3.0): the 0x55AA header with its size in 512-byte units, an entry point
 * that returns at once (a far return, so firmware that calls it is unharmed), the pointer at 0x18 to a "PCIR" data
 * structure naming the function, then a pattern anyone can recompute: byte i = (i * 7 + 3) & 0xff from 0x100 on.
 * The last byte makes the sum of all bytes 0 mod 256, as the checksum rule asks.
 */
export function buildOptionRom(options: { vendor: number; device: number; classCode: number; size: number }): Uint8Array {
  const { size } = options;
  if (size % 512 !== 0 || size < 0x200 || size / 512 > 0xff) throw new RangeError(`option ROM size ${size} must be a multiple of 512 up to 127.5 KiB`);
  const rom = new Uint8Array(size);
  const view = new DataView(rom.buffer);
  rom[0] = 0x55;
  rom[1] = 0xaa;
  rom[2] = size / 512;
  rom[3] = 0xcb; // retf
  const pcir = 0x1c;
  view.setUint16(0x18, pcir, true);
  rom.set([0x50, 0x43, 0x49, 0x52], pcir); // "PCIR"
  view.setUint16(pcir + 0x04, options.vendor, true);
  view.setUint16(pcir + 0x06, options.device, true);
  view.setUint16(pcir + 0x08, 0, true); // no device list
  view.setUint16(pcir + 0x0a, 0x1c, true); // structure length
  rom[pcir + 0x0c] = 3; // structure revision (PCI Firmware 3.0)
  rom[pcir + 0x0d] = options.classCode & 0xff;
  rom[pcir + 0x0e] = (options.classCode >>> 8) & 0xff;
  rom[pcir + 0x0f] = (options.classCode >>> 16) & 0xff;
  view.setUint16(pcir + 0x10, size / 512, true); // image length
  view.setUint16(pcir + 0x12, 1, true); // revision level of the code
  rom[pcir + 0x14] = 0; // code type: x86 PC-AT
  rom[pcir + 0x15] = 0x80; // last image
  view.setUint16(pcir + 0x16, size / 512, true); // maximum run-time image length
  for (let i = 0x100; i < size - 1; i++) rom[i] = (i * 7 + 3) & 0xff;
  let sum = 0;
  for (let i = 0; i < size - 1; i++) sum += rom[i]!;
  rom[size - 1] = (0x100 - (sum & 0xff)) & 0xff;
  return rom;
}
