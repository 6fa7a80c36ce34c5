import { PluginError, Tokens, type DeviceType } from "@vmm/core";
import type { DependencyContainer } from "tsyringe";
import { UsageError } from "../errors.js";
import { registerPlugin, type LoadedPlugin } from "./load.js";

/** A device type together with the plugin that registered it. */
export interface CatalogEntry {
  readonly type: DeviceType;
  readonly plugin: string;
  readonly builtin: boolean;
}

const TYPE_NAME = /^[a-z0-9][a-z0-9._-]*$/;

function deviceTypes(container: DependencyContainer): DeviceType[] {
  return container.isRegistered(Tokens.DeviceType, true) ? container.resolveAll(Tokens.DeviceType) : [];
}

/** Checks what a plugin registered under Tokens.DeviceType; a bad entry names the plugin. */
function checkDeviceType(value: unknown, plugin: string): DeviceType {
  const t = value as Partial<DeviceType> | undefined;
  const problems: string[] = [];
  if (!t || typeof t !== "object") throw new PluginError(plugin, "registered a device type that is not an object");
  if (typeof t.type !== "string" || !TYPE_NAME.test(t.type)) problems.push("type (lowercase name)");
  if (typeof t.description !== "string") problems.push("description (string)");
  if (!t.options || typeof t.options !== "object") problems.push("options (schema object)");
  if (typeof t.create !== "function") problems.push("create (function)");
  if (problems.length) {
    throw new PluginError(plugin, `malformed device type ${JSON.stringify(t.type ?? "?")}: missing or wrong ${problems.join(", ")}`);
  }
  return t as DeviceType;
}

/**
 * Registers the plugins into `container` one at a time, attributing each new device type to the plugin that
 * registered it. Two plugins providing the same type name is an error naming both.
 */
export async function registerAll(
  container: DependencyContainer,
  plugins: readonly LoadedPlugin[],
  abort?: AbortSignal,
): Promise<Map<string, CatalogEntry>> {
  const catalog = new Map<string, CatalogEntry>();
  let seen = deviceTypes(container).length;
  for (const loaded of plugins) {
    await registerPlugin(container, loaded, abort);
    const all = deviceTypes(container);
    for (const value of all.slice(seen)) {
      const type = checkDeviceType(value, loaded.plugin.name);
      const existing = catalog.get(type.type);
      if (existing) {
        throw new PluginError(loaded.plugin.name, `device type '${type.type}' is already provided by plugin ${existing.plugin}`);
      }
      catalog.set(type.type, { type, plugin: loaded.plugin.name, builtin: loaded.builtin });
    }
    seen = all.length;
  }
  return catalog;
}

/** The catalog entry for a `--device` type, or a usage error listing the known types. */
export function lookupType(catalog: ReadonlyMap<string, CatalogEntry>, type: string): CatalogEntry {
  const entry = catalog.get(type);
  if (entry) return entry;
  const known = [...catalog.keys()].sort();
  throw new UsageError(
    `unknown device type '${type}' (${known.length ? `known: ${known.join(", ")}` : "no plugin provides any device type"}; ` +
      "load the plugin that provides it with --plugin)",
  );
}
