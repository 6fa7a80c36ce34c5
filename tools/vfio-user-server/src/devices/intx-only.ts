import type { DeviceSpec } from "../device/device-spec.js";

/** A function with INTx only (1234:11e8): one 4 KiB memory BAR, trapped, the test engine at its start; PM only. */
export function intxOnly(): DeviceSpec {
  return {
    name: "intx-only",
    engineId: 4,
    identity: { vendor: 0x1234, device: 0x11e8, revision: 0x10, classCode: 0xff0000, subsystemVendor: 0x1af4, subsystem: 0x1100, interruptPin: 1 },
    express: false,
    bars: [{ index: 0, kind: "mem32", size: 0x1000 }],
    engine: { bar: 0, offset: 0x0 },
    capabilities: [{ kind: "pm", offset: 0x40, pmc: 0x0003 }],
    extendedCapabilities: [],
  };
}
