import { ConfigurationError, type PciDevice, type SmallAccessSize } from "@vmm/core";
import { romRegister } from "./bars/bar-layout.js";
import { Reg } from "./config/header.js";

/** The ROM BAR size for an image: the next power of two, at least 2 KiB. */
export function romBarSize(length: number): number {
  let size = 2048;
  while (size < length) size *= 2;
  return size;
}

/**
 * Gives any PCI function an expansion ROM: the ROM BAR at 0x30 (address bits writable down to the ROM's size,
 * the enable bit) is emulated in front of the device's config space, and `rom` tells the bus to size, map and
 * serve it. The device itself is untouched; every other property and method is its own.
 */
export function withExpansionRom<D extends PciDevice>(device: D, image: Uint8Array): D {
  if (image.length === 0) throw new ConfigurationError(`${device.name}: the ROM image is empty`);
  if (image.length > 16 * 1024 * 1024) throw new ConfigurationError(`${device.name}: a ROM of ${image.length} bytes is more than 16 MiB`);
  const rom = { size: romBarSize(image.length), bytes: image };
  const layout = romRegister(rom.size);
  let value = layout.initial;
  const inRom = (offset: number) => offset >= Reg.ROM_BAR && offset < Reg.ROM_BAR + 4;
  const configRead = (offset: number, size: SmallAccessSize): number => {
    if (!inRom(offset)) return device.configRead(offset, size);
    const shift = 8 * (offset - Reg.ROM_BAR);
    return size === 4 ? value >>> 0 : (value >>> shift) & (size === 1 ? 0xff : 0xffff);
  };
  const configWrite = (offset: number, size: SmallAccessSize, v: number): void => {
    if (!inRom(offset)) return device.configWrite(offset, size, v);
    const shift = 8 * (offset - Reg.ROM_BAR);
    const mask = (size === 4 ? 0xffff_ffff : size === 2 ? 0xffff : 0xff) << shift;
    const merged = (value & ~mask) | ((v << shift) & mask);
    value = ((merged & layout.writable) | (layout.initial & ~layout.writable)) >>> 0;
  };
  return new Proxy(device, {
    get(target, property) {
      if (property === "rom") return rom;
      if (property === "configRead") return configRead;
      if (property === "configWrite") return configWrite;
      const v = Reflect.get(target, property, target) as unknown;
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
