import type { LoadedPlugin } from "./load.js";
import { acceptPlugin } from "./load.js";

/** A plugin that ships with vmm: how to import it and the device types it registers (`types`). */
export interface BuiltinPlugin {
  readonly name: string;
  readonly load: () => Promise<unknown>;
  /**
   * The device types its `register` binds (a test checks the list against registration). With it, `vmm run`
   * imports the plugin only when one of them is asked for; without it, always.
   */
  readonly types?: readonly string[];
}

/**
 * The device packages that ship with vmm. Each default-exports a VmmPlugin and is loaded exactly like a
 * third-party plugin (same API check, same option validation, same registration).
 */
export const BUILTIN_PLUGINS: readonly BuiltinPlugin[] = [
  { name: "@vmm/device-virtio", load: () => import("@vmm/device-virtio/plugin"), types: ["virtio-blk", "virtio-net", "virtio-console", "virtio-rng"] },
  { name: "@vmm/device-vesa", load: async () => (await import("@vmm/device-vesa")).vesaPlugin, types: ["vesa"] },
  { name: "@vmm/device-vfio", load: async () => (await import("@vmm/device-vfio")).vfioPlugin, types: ["vfio-user", "vfio-pci"] },
];

/**
 * Imports and checks the built-in plugins, with default options: every one, or with `needed` (device types a run
 * asks for), only those that provide one of them and those that do not say what they provide. A type no built-in
 * declares (a third-party plugin's, or a typo) loads them all, so an unknown type's error lists every known one.
 */
export async function loadBuiltinPlugins(
  list: readonly BuiltinPlugin[] = BUILTIN_PLUGINS,
  needed?: ReadonlySet<string>,
  ownTypes: readonly string[] = [],
): Promise<LoadedPlugin[]> {
  const declared = new Set([...ownTypes, ...list.flatMap((e) => e.types ?? [])]);
  const selective = needed && [...needed].every((t) => declared.has(t));
  const out: LoadedPlugin[] = [];
  for (const entry of list) {
    if (selective && entry.types && !entry.types.some((t) => needed.has(t))) continue;
    out.push(acceptPlugin(await entry.load(), entry.name, {}, true, "built-in"));
  }
  return out;
}
