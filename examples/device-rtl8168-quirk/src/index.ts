import { PLUGIN_API_VERSION, registerQuirk, type VmmPlugin } from "@vmm/core";
import { rtl8168BackDoorQuirk } from "./back-door.js";

export {
  BackDoor,
  BACK_DOOR_REGISTERS,
  backDoorWindow,
  type BackDoorState,
  QUIRK_NAME,
  REALTEK_VENDOR_ID,
  RTL8168_DEVICE_ID,
  rtl8168BackDoorQuirk,
} from "./back-door.js";

export const PLUGIN_NAME = "@x/device-rtl8168-quirk";

/** The plugin: no device type of its own, one quirk for passthrough RTL8168s (`--device vfio-pci` or `vfio-user`). */
const plugin: VmmPlugin = {
  name: PLUGIN_NAME,
  version: "0.1.0",
  apiVersion: PLUGIN_API_VERSION,
  description: "the RTL8168's MSI-X back door for passthrough devices",
  register(container) {
    registerQuirk(container, PLUGIN_NAME, rtl8168BackDoorQuirk);
  },
};

export default plugin;
