// Which registered quirks apply to a passthrough device: a match names vendor and device, and where it gives them,
// the subsystem IDs and the revision; all it names must equal the device's own.
import type { DeviceQuirk, QuirkMatch } from "@vmm/core";
import type { DeviceIdentity } from "../device/device-config.js";

export function matchesIdentity(match: QuirkMatch, id: DeviceIdentity): boolean {
  return (
    match.vendorId === id.vendorId &&
    match.deviceId === id.deviceId &&
    (match.subsystemVendorId === undefined || match.subsystemVendorId === id.subsystemVendorId) &&
    (match.subsystemId === undefined || match.subsystemId === id.subsystemId) &&
    (match.revision === undefined || match.revision === id.revision)
  );
}

/** Whether any of the quirk's matches names this device. */
export function quirkMatches(quirk: DeviceQuirk, id: DeviceIdentity): boolean {
  const list: readonly QuirkMatch[] = Array.isArray(quirk.match) ? quirk.match : [quirk.match as QuirkMatch];
  return list.some((m) => matchesIdentity(m, id));
}
