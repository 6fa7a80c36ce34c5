import { PLUGIN_API_VERSION, registerDeviceType, type VmmPlugin } from "@vmm/core";
import { PciTestDevice } from "./device.js";

export { PciTestDevice, Bars, MMIO_BAR_SIZE, MSIX_TABLE_OFFSET, TESTDEV_CLASS, TESTDEV_DEVICE_ID, TESTDEV_VENDOR_ID } from "./device.js";
export { DEFAULT_ID, Reg, REGISTER_BYTES, type RegisterState, TESTDEV_REGISTERS, TestdevRegisters } from "./registers.js";

const PLUGIN = "@x/device-pci-testdev";

/** The plugin: one device type, `pci-testdev`. */
const plugin: VmmPlugin = {
  name: PLUGIN,
  version: "0.1.0",
  apiVersion: PLUGIN_API_VERSION,
  description: "a PCI test device for guest tests",
  register(container) {
    registerDeviceType(container, PLUGIN, {
      type: "pci-testdev",
      description: "PCI test device: ID, scratch, doorbell/counter and MSI-X trigger registers in a memory and an I/O BAR",
      options: {
        id: { type: "number", integer: true, min: 0, max: 0xffffffff, default: 0x54534554, description: "value of the ID register" },
        vectors: { type: "number", integer: true, min: 1, max: 64, default: 4, description: "number of MSI-X vectors" },
      },
      create: ({ name }, options) => new PciTestDevice({ name, id: options.id as number, vectors: options.vectors as number }),
    });
  },
};

export default plugin;
