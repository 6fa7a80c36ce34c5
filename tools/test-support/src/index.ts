// The KVM gate has no side effects on import. The network-namespace harness probes the host when imported,
// so it lives behind its own entry point: @vmm/test-support/netns.
export { devKvmUsable, kvmSkipBanner, kvmTestGate, type KvmAvailability, type KvmTestGateOptions } from "./kvm-gate.js";
export { decodePng, type DecodedPng } from "./png-decode.js";
export { hostToolAvailable } from "./host-tool.js";
export { startVfioUserServer, vfioUserServerBin, vfioUserServerMissing, type VfioUserServer, type VfioUserServerOptions } from "./vfio-user-server.js";
export { NOBODY, unprivileged, type Unprivileged, type UnprivilegedUser } from "./unprivileged.js";
export { dtcRoundTrip, type DtcRoundTrip, type DtcRoundTripOptions } from "./dtc.js";
