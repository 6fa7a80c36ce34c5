import type { DeviceSpec } from "../device/device-spec.js";
import { intxOnly } from "./intx-only.js";
import { nvme } from "./nvme.js";
import { rtl8168 } from "./rtl8168.js";
import { subpageRom } from "./subpage-rom.js";

/** The simulated devices by their --device name. */
export const DEVICES = {
  rtl8168,
  nvme,
  "subpage-rom": subpageRom,
  "intx-only": intxOnly,
} as const satisfies Record<string, () => DeviceSpec>;

export type DeviceName = keyof typeof DEVICES;

export const DEVICE_NAMES = Object.keys(DEVICES) as DeviceName[];

export function isDeviceName(name: string): name is DeviceName {
  return Object.hasOwn(DEVICES, name);
}
