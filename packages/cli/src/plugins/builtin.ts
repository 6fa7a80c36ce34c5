import type { LoadedPlugin } from "./load.js";
import { acceptPlugin } from "./load.js";

/**
 * The device packages that ship with vmm. Each default-exports a VmmPlugin and is loaded exactly like a
 * third-party plugin (same API check, same option validation, same registration).
 */
export const BUILTIN_PLUGINS: ReadonlyArray<{ readonly name: string; readonly load: () => Promise<unknown> }> = [
  { name: "@vmm/device-virtio", load: () => import("@vmm/device-virtio/plugin") },
  { name: "@vmm/device-vesa", load: async () => (await import("@vmm/device-vesa")).vesaPlugin },
  { name: "@vmm/device-vfio", load: async () => (await import("@vmm/device-vfio")).vfioPlugin },
];

/** Imports and checks every built-in plugin, with default options. */
export async function loadBuiltinPlugins(
  list: ReadonlyArray<{ readonly name: string; readonly load: () => Promise<unknown> }> = BUILTIN_PLUGINS,
): Promise<LoadedPlugin[]> {
  const out: LoadedPlugin[] = [];
  for (const entry of list) out.push(acceptPlugin(await entry.load(), entry.name, {}, true, "built-in"));
  return out;
}
