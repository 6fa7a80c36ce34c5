// Quirks: a plugin's fix for one device's passthrough behaviour (QEMU keeps these compiled into its VFIO code;
// here a third party ships one). A quirk names the devices it matches and, for each matching passthrough device,
// the trapped windows it lays over a BAR or config space. The VMM (@vmm/device-vfio) matches and lays them.
import type { DependencyContainer } from "tsyringe";
import type { SmallAccessSize } from "../address-space.js";
import { PluginError } from "../errors.js";
import type { PciBarDescriptor } from "../pci-device.js";
import { Tokens } from "../tokens.js";

/**
 * Which devices a quirk applies to: vendor and device ID, and where given, the subsystem IDs and the revision.
 * The IDs are the device's own (what it reports in config space).
 */
export interface QuirkMatch {
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId?: number;
  readonly subsystemId?: number;
  readonly revision?: number;
}

/** Accesses to the real device underneath the VMM: one BAR (BAR-relative offsets) or config space. */
export interface QuirkDeviceAccess {
  /** Reads the device; an access outside the region, or one the device fails, reads all-ones. */
  read(offset: number, size: SmallAccessSize): number;
  /** Writes the device; outside the region, dropped. */
  write(offset: number, size: SmallAccessSize, value: number): void;
}

/** The VMM's emulated MSI-X table of the device, reached as the guest reaches it through the table. */
export interface QuirkMsixTable {
  readonly vectors: number;
  /** Table-relative (entry `v` at `16 * v`); outside the table reads all-ones. */
  read(offset: number, size: SmallAccessSize): number;
  /** Table-relative; a write unmasking a vector delivers what is pending, as a guest write would. Outside: dropped. */
  write(offset: number, size: SmallAccessSize, value: number): void;
}

/** A matching passthrough device, as a quirk sees it when it lays its windows. */
export interface QuirkDevice {
  /** The VM's instance name, e.g. "vfio-user0". */
  readonly name: string;
  readonly vendorId: number;
  readonly deviceId: number;
  readonly subsystemVendorId: number;
  readonly subsystemId: number;
  readonly revision: number;
  readonly classCode: number;
  readonly bars: readonly PciBarDescriptor[];
  /** The real BAR `index`, bypassing every window and the VMM's emulation. */
  bar(index: number): QuirkDeviceAccess;
  /** The real config space, bypassing the VMM's virtualization. */
  readonly config: QuirkDeviceAccess;
  /** The VMM's emulated MSI-X table; undefined when the VMM shows the device without MSI-X. */
  readonly msixTable: QuirkMsixTable | undefined;
}

/** Where a quirk window lies: over a BAR (`{ bar: 2 }`) or over config space. */
export type QuirkTarget = { readonly bar: number } | "config";

/**
 * A trapped window a quirk lays over a BAR or config space. Accesses inside it reach `read`/`write` with
 * window-relative offsets; a window without `read` (or `write`) lets that direction reach the device underneath.
 * Over an mmapped BAR only the window's page traps; the rest stays mapped.
 */
export interface QuirkWindow {
  /** Names the window in errors and listings. */
  readonly name: string;
  readonly target: QuirkTarget;
  readonly offset: number;
  readonly size: number;
  read?(offset: number, size: SmallAccessSize): number;
  write?(offset: number, size: SmallAccessSize, value: number): void;
}

/**
 * A device quirk, registered by a plugin with `registerQuirk`. For every passthrough device it matches, the VMM
 * calls `windows(device)` once when it builds the device and lays the windows returned (state a quirk keeps per
 * device lives in that call's closure). Quirks compose: windows of several quirks may lie on one device as long as
 * they do not overlap. A quirk that throws stops the VM with a line naming its plugin and the device.
 */
export interface DeviceQuirk {
  /** Lowercase name, unique per plugin, e.g. "rtl8168-msix-back-door". */
  readonly name: string;
  readonly description: string;
  /** The devices it applies to (any of them). */
  readonly match: QuirkMatch | readonly QuirkMatch[];
  windows(device: QuirkDevice): readonly QuirkWindow[];
  /** Set by registerQuirk: the plugin that provided it. */
  readonly plugin?: string;
}

/** A quirk applied to one device, as `vmm devices` lists it (`PciDevice.quirks`). */
export interface AppliedQuirk {
  readonly name: string;
  readonly plugin: string;
  readonly description: string;
  /** The windows it laid, e.g. "BAR2 0x70+0x8 MSI-X back door". */
  readonly windows: readonly string[];
}

const QUIRK_NAME = /^[a-z0-9][a-z0-9._-]*$/;
const u = (n: unknown, bits: number) => typeof n === "number" && Number.isInteger(n) && n >= 0 && n < 2 ** bits;

/** What is wrong with a match, or undefined. */
function matchProblem(m: Partial<QuirkMatch> | undefined): string | undefined {
  if (!m || typeof m !== "object") return "a match is not an object";
  if (!u(m.vendorId, 16) || !u(m.deviceId, 16)) return "a match needs 16-bit vendorId and deviceId";
  if ((m.subsystemVendorId !== undefined && !u(m.subsystemVendorId, 16)) || (m.subsystemId !== undefined && !u(m.subsystemId, 16))) {
    return "subsystem IDs are 16-bit numbers";
  }
  if (m.revision !== undefined && !u(m.revision, 8)) return "the revision is a byte";
  return undefined;
}

/**
 * Binds a quirk into a container under Tokens.Quirk, remembering which plugin provided it. A malformed quirk is
 * refused with a PluginError naming the plugin and what is wrong.
 */
export function registerQuirk(container: DependencyContainer, plugin: string, quirk: DeviceQuirk): void {
  const q = quirk as Partial<DeviceQuirk> | undefined;
  const problems: string[] = [];
  if (!q || typeof q !== "object") throw new PluginError(plugin, "registered a quirk that is not an object");
  if (typeof q.name !== "string" || !QUIRK_NAME.test(q.name)) problems.push("name (lowercase name)");
  if (typeof q.description !== "string") problems.push("description (string)");
  if (typeof q.windows !== "function") problems.push("windows (function)");
  const matches = Array.isArray(q.match) ? (q.match as QuirkMatch[]) : [q.match as QuirkMatch | undefined];
  const bad = matches.length === 0 ? "an empty match list" : matches.map(matchProblem).find((p) => p !== undefined);
  if (bad) problems.push(`match (${bad})`);
  if (problems.length) throw new PluginError(plugin, `malformed quirk ${JSON.stringify(q.name ?? "?")}: missing or wrong ${problems.join(", ")}`);
  container.register(Tokens.Quirk, { useValue: { ...quirk, plugin } });
}
