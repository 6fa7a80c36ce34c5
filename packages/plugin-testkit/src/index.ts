// The public API of @vmm/plugin-testkit: an explicit list (documented in README.md); api-report.md records it.
// reflect-metadata first: tsyringe needs it loaded before any container is made.
import "reflect-metadata";

export { ConformanceError } from "./errors.js";

// Plugins: registration, option schemas, quirks.
export { checkPlugin, type CheckPluginOptions, type PluginReport } from "./plugin/check-plugin.js";

// Devices: config-space rules on a real PciBus.
export { checkDevice, assertDeviceConforms, assertDeviceReport, type CheckDeviceOptions } from "./device/check-device.js";
export { describeFailure, type ConfigCheck, type DeviceReport } from "./device/report.js";

// Guest programs under /dev/kvm.
export { runGuestProgram, kvmAvailable, type GuestProgramOptions, type GuestProgramResult } from "./guest/run-guest.js";
