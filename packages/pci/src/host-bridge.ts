import { PciFunction } from "./function.js";

/** Intel's vendor ID and the 82G33/P35 ("Q35") DRAM controller device ID, which guests know as a host bridge. */
export const HOST_BRIDGE_VENDOR_ID = 0x8086;
export const HOST_BRIDGE_DEVICE_ID = 0x29c0;
/** Class 06 (bridge), subclass 00 (host bridge), interface 00. */
export const HOST_BRIDGE_CLASS = 0x060000;

/** The host bridge at 00:00.0: IDs and class only, no BARs, no interrupt. */
export class HostBridge extends PciFunction {

  /** Snapshots: everything it keeps is in config space. */
  protected override saveDeviceState(): undefined {
    return undefined;
  }
  constructor() {
    super({
      name: "host-bridge",
      vendorId: HOST_BRIDGE_VENDOR_ID,
      deviceId: HOST_BRIDGE_DEVICE_ID,
      classCode: HOST_BRIDGE_CLASS,
    });
  }
}
