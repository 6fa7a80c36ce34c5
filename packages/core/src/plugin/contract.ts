import type { DependencyContainer } from "tsyringe";
import { PluginError } from "../errors.js";
import type { PciDevice } from "../pci-device.js";
import { Tokens } from "../tokens.js";
import type { OptionSchema, OptionValues } from "./options.js";

/** The plugin API this build of the VMM speaks. A plugin targeting another version is refused. */
export const PLUGIN_API_VERSION = 2;

/** What a device factory gets: the VM's container (core services by Tokens) and its instance name. */
export interface DeviceContext {
  readonly container: DependencyContainer;
  /** Unique per VM, e.g. "virtio-blk0". */
  readonly name: string;
  /**
   * Stops the VM because this device cannot go on (the process serving it died, its host device vanished): the
   * VMM reports `error` in one line naming the device and stops the guest. Calls after the first are ignored.
   * Absent where nothing can stop the VM (a test building a device by hand): a device then logs and degrades.
   */
  readonly fault?: (error: unknown) => void;
}

/** The guest architectures a machine can be assembled for (`vmm run --arch`). */
export const GUEST_ARCHITECTURES = ["x86_64", "arm64"] as const;
export type GuestArchitecture = (typeof GUEST_ARCHITECTURES)[number];

/** A kind of device users can instantiate with `--device TYPE,key=value,...`. */
export interface DeviceType<O extends OptionValues = OptionValues> {
  readonly type: string;
  readonly description: string;
  readonly options: OptionSchema;
  /**
   * The guest architectures this type works on; absent means every one. A type that relies on one platform's
   * legacy (ISA ports, a BIOS convention) lists the architectures it supports, and vmm refuses it elsewhere.
   */
  readonly architectures?: readonly GuestArchitecture[];
  /** Builds one device from validated options (defaults filled in). */
  create(context: DeviceContext, options: O): PciDevice | Promise<PciDevice>;
  /** Set by registerDeviceType: the plugin that provided it. */
  readonly plugin?: string;
}

/** The default export of a plugin package. Built-in devices use this same contract. */
export interface VmmPlugin {
  readonly name: string;
  readonly version: string;
  /** The PLUGIN_API_VERSION this plugin was written against. */
  readonly apiVersion: number;
  readonly description?: string;
  /** Plugin-wide options (given as --plugin NAME,key=value). */
  readonly options?: OptionSchema;
  /** Binds the plugin's device types (registerDeviceType) and any services into the VM's child container. */
  register(container: DependencyContainer, options: OptionValues): void | Promise<void>;
}

/** Identity helper that gives plugin authors type checking. */
export function definePlugin(plugin: VmmPlugin): VmmPlugin {
  return plugin;
}

/** Whether a device type can be used in a guest of this architecture. */
export function deviceTypeSupports(type: Pick<DeviceType, "architectures">, arch: GuestArchitecture): boolean {
  return type.architectures === undefined || type.architectures.includes(arch);
}

/** Binds a device type into a container under Tokens.DeviceType, remembering which plugin provided it. */
export function registerDeviceType(container: DependencyContainer, plugin: string, type: DeviceType): void {
  const unknown = (type.architectures ?? []).filter((a) => !(GUEST_ARCHITECTURES as readonly string[]).includes(a));
  if (type.architectures !== undefined && (!Array.isArray(type.architectures) || type.architectures.length === 0 || unknown.length)) {
    throw new PluginError(
      plugin,
      `device type ${type.type}: architectures must list some of ${GUEST_ARCHITECTURES.join(", ")}` + (unknown.length ? ` (unknown: ${unknown.join(", ")})` : ""),
    );
  }
  container.register(Tokens.DeviceType, { useValue: { ...type, plugin } });
}

/**
 * Checks that a loaded module's default export is a usable plugin for this API version.
 * `source` names where it came from (package name or path) for errors.
 */
export function assertPlugin(value: unknown, source: string): VmmPlugin {
  const p = (value && typeof value === "object" && "default" in value ? (value as { default: unknown }).default : value) as
    | Partial<VmmPlugin>
    | null
    | undefined;
  const name = typeof p?.name === "string" && p.name ? p.name : source;
  if (!p || typeof p !== "object") throw new PluginError(source, "the default export is not a plugin object");
  const missing: string[] = [];
  if (typeof p.name !== "string" || !p.name) missing.push("name (string)");
  if (typeof p.version !== "string" || !p.version) missing.push("version (string)");
  if (typeof p.apiVersion !== "number") missing.push("apiVersion (number)");
  if (typeof p.register !== "function") missing.push("register (function)");
  if (p.options !== undefined && (typeof p.options !== "object" || p.options === null)) missing.push("options (object)");
  if (missing.length) throw new PluginError(name, `malformed plugin: missing or wrong ${missing.join(", ")}`);
  if (p.apiVersion !== PLUGIN_API_VERSION) {
    throw new PluginError(name, `targets plugin API version ${p.apiVersion}, but this VMM speaks version ${PLUGIN_API_VERSION}`);
  }
  return p as VmmPlugin;
}
