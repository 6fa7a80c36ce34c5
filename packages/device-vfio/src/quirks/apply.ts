// Applies plugin quirks to a passthrough function: the quirks that match the device lay their windows over its BARs
// (only the window's page stops being mmapped) or its config space. Every hook of a window runs inside a wrapper
// that turns a throw (or a read that is not a number) into a PluginError naming the quirk, its plugin and the
// device, which the VMM's device guard reports in one line as it stops the VM.
import {
  PluginError,
  toUnsigned,
  Tokens,
  type AppliedQuirk,
  type DeviceContext,
  type DeviceQuirk,
  type Handle,
  type IoHandler,
  type PciBarDescriptor,
  type QuirkDevice,
  type QuirkDeviceAccess,
  type QuirkMsixTable,
  type QuirkWindow,
} from "@vmm/core";
import type { BarOverlay } from "@vmm/pci";
import { hex } from "../device/bytes.js";
import type { DeviceIdentity } from "../device/device-config.js";
import { quirkMatches } from "./match.js";

/** What a quirk is applied to (a VfioPciFunction). */
export interface QuirkHost {
  readonly name: string;
  readonly identity: DeviceIdentity;
  readonly bars: readonly PciBarDescriptor[];
  readonly msixTable: QuirkMsixTable | undefined;
  deviceAccess(target: number | "config"): QuirkDeviceAccess;
  overlayBar(index: number, overlay: BarOverlay): Handle;
  overlayConfig(overlay: BarOverlay): Handle;
}

/** The quirks plugins registered in a VM's container (Tokens.Quirk), in registration order. */
export function registeredQuirks(container: DeviceContext["container"]): DeviceQuirk[] {
  return container.isRegistered(Tokens.Quirk, true) ? container.resolveAll(Tokens.Quirk) : [];
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Lays the windows of every quirk in `quirks` that matches `host`, in order, and returns what was applied. A quirk
 * whose `windows` throws, or returns a window that is malformed, outside its BAR or config space, or overlapping
 * another quirk's, refuses the device: a PluginError naming the plugin, the quirk and the device (the windows laid
 * so far are taken away again).
 */
export function applyQuirks(host: QuirkHost, quirks: readonly DeviceQuirk[]): AppliedQuirk[] {
  const applied: AppliedQuirk[] = [];
  const laid: Handle[] = [];
  try {
    for (const quirk of quirks) {
      if (!quirkMatches(quirk, host.identity)) continue;
      const plugin = quirk.plugin ?? "(unnamed)";
      const fail = (what: string, cause?: unknown) => new PluginError(plugin, `quirk ${quirk.name} on device ${host.name}: ${what}`, { cause });
      let windows: readonly QuirkWindow[];
      try {
        windows = quirk.windows(deviceView(host));
      } catch (e) {
        throw fail(`windows() threw: ${message(e)}`, e);
      }
      if (!Array.isArray(windows)) throw fail("windows() must return a list of windows");
      const lines: string[] = [];
      for (const w of windows) {
        const problem = windowProblem(w, host);
        if (problem) throw fail(problem);
        const overlay: BarOverlay = { name: `${quirk.name}: ${w.name}`, offset: w.offset, size: w.size, handler: guardedHandler(host, quirk, plugin, w) };
        try {
          laid.push(w.target === "config" ? host.overlayConfig(overlay) : host.overlayBar(w.target.bar, overlay));
        } catch (e) {
          throw fail(message(e), e);
        }
        lines.push(`${w.target === "config" ? "config" : `BAR${w.target.bar}`} ${hex(w.offset)}+${hex(w.size)} ${w.name}`);
      }
      applied.push({ name: quirk.name, plugin, description: quirk.description, windows: lines });
    }
  } catch (e) {
    for (const handle of laid.reverse()) handle.remove();
    throw e;
  }
  return applied;
}

/** The device as `windows` sees it. */
function deviceView(host: QuirkHost): QuirkDevice {
  const id = host.identity;
  return {
    name: host.name,
    vendorId: id.vendorId,
    deviceId: id.deviceId,
    subsystemVendorId: id.subsystemVendorId,
    subsystemId: id.subsystemId,
    revision: id.revision,
    classCode: id.classCode,
    bars: host.bars,
    bar: (index) => host.deviceAccess(index),
    config: host.deviceAccess("config"),
    msixTable: host.msixTable,
  };
}

/** What is wrong with a window a quirk returned, or undefined (placement inside the BAR is checked when laid). */
function windowProblem(w: QuirkWindow | undefined, host: QuirkHost): string | undefined {
  if (!w || typeof w !== "object") return "a window is not an object";
  const name = typeof w.name === "string" && w.name ? w.name : undefined;
  if (!name) return "a window needs a name";
  const target = w.target as unknown;
  if (target !== "config") {
    const bar = (target as { bar?: unknown } | null)?.bar;
    if (typeof bar !== "number" || !host.bars.some((b) => b.index === bar)) return `window "${name}": target must be "config" or { bar: N } naming one of the device's BARs`;
  }
  if (!Number.isInteger(w.offset) || !Number.isInteger(w.size) || w.offset < 0 || w.size < 1) return `window "${name}": offset and size must be whole numbers (size at least 1)`;
  if ((w.read !== undefined && typeof w.read !== "function") || (w.write !== undefined && typeof w.write !== "function")) return `window "${name}": read and write must be functions`;
  return undefined;
}

/**
 * The window's hooks as an IoHandler: a direction without a hook reaches the device underneath; a hook that throws
 * (or reads something that is not a number) becomes a PluginError naming the quirk, its plugin and the device.
 */
function guardedHandler(host: QuirkHost, quirk: DeviceQuirk, plugin: string, w: QuirkWindow): IoHandler {
  const device = host.deviceAccess(w.target === "config" ? "config" : w.target.bar);
  const failed = (what: string, offset: number, cause?: unknown) =>
    new PluginError(plugin, `quirk ${quirk.name} failed on device ${host.name} (${w.name} ${what} at ${hex(w.offset + offset)})${cause === undefined ? "" : `: ${message(cause)}`}`, { cause });
  return {
    read: (offset, size) => {
      if (!w.read) return device.read(w.offset + offset, size);
      let value: unknown;
      try {
        value = w.read(offset, size);
      } catch (e) {
        throw failed("read", offset, e);
      }
      if (typeof value !== "number" || !Number.isFinite(value)) throw failed("read", offset, `it returned ${String(value)}, not a number`);
      return toUnsigned(value, size);
    },
    write: (offset, size, value) => {
      if (!w.write) return device.write(w.offset + offset, size, value);
      try {
        w.write(offset, size, value);
      } catch (e) {
        throw failed("write", offset, e);
      }
    },
  };
}
