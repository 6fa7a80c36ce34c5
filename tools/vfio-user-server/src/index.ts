// The server as a library, for tests and tools that want a simulated device in-process.
export { runServer, ExitStatus, type ServerOptions } from "./server.js";
export { DEVICES, DEVICE_NAMES, isDeviceName, type DeviceName } from "./devices/index.js";
export { SimulatedDevice, irqCountsOf, type DeviceHost, type RegionDescription } from "./device/simulated-device.js";
export type { DeviceSpec, DeviceBar, CapabilityDecl, ExtendedCapabilityDecl, DeviceWindow } from "./device/device-spec.js";
export { ENGINE_MAGIC, ENGINE_SIZE, EngineRegister, EngineStatus, EngineDoorbell, EngineOp, CONTROL_EXIT, CONTROL_EXIT_STATUS } from "./device/test-engine.js";
export { HOST_MSI_ADDRESS, HOST_MSI_DATA_BASE } from "./device/msix-table.js";
export { BACK_DOOR_DATA, BACK_DOOR_ADDRESS, BACK_DOOR_TARGET_MSIX } from "./devices/rtl8168.js";
