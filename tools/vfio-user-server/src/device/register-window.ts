import type { RegisterTable } from "@vmm/core";
import type { DeviceWindow } from "./device-spec.js";

/** A trapped window whose registers are a core RegisterTable over `state` (reset puts `initial()` back). */
export function registerWindow<S extends object>(name: string, offset: number, table: RegisterTable<S>, initial: () => S): DeviceWindow {
  let state = initial();
  return {
    name,
    offset,
    size: table.size,
    read: (at, width) => table.read(state, at, width),
    write: (at, width, value) => table.write(state, at, width, value),
    reset: () => {
      state = initial();
    },
  };
}

/** A trapped window that forwards every access to another region of the device (an I/O BAR aliasing registers). */
export function aliasWindow(
  name: string,
  size: number,
  target: { read(offset: number, length: number): Uint8Array; write(offset: number, data: Uint8Array): void },
): DeviceWindow {
  return {
    name,
    offset: 0,
    size,
    read: (at, width) => {
      const bytes = target.read(at, width);
      let value = 0;
      for (let i = 0; i < width; i++) value |= bytes[i]! << (8 * i);
      return value >>> 0;
    },
    write: (at, width, value) => {
      const bytes = new Uint8Array(width);
      for (let i = 0; i < width; i++) bytes[i] = (value >>> (8 * i)) & 0xff;
      target.write(at, bytes);
    },
  };
}
