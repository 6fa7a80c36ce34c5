import type { CliContext } from "../context.js";
import type { Spec } from "../options/spec.js";
import { ROOT_PORT_TYPE } from "../options/placement.js";
import { BUILTIN_PLUGINS, loadBuiltinPlugins } from "./builtin.js";
import { acceptPlugin, loadPlugin, mergePlugins, type LoadedPlugin } from "./load.js";

/**
 * The built-in plugins followed by the `--plugin` ones (resolved from the working directory), checked. Naming a
 * built-in with `--plugin` (e.g. `--plugin @vmm/device-vesa,display=vnc`) gives it options; it is not resolved
 * from the working directory. With `devices` (the device specs of a run), a built-in is imported only when one of
 * its device types is among them: a run does not pay for device packages it does not use.
 */
export async function loadAllPlugins(specs: readonly Spec[], ctx: CliContext, abort?: AbortSignal, devices?: readonly Spec[]): Promise<LoadedPlugin[]> {
  const builtins = ctx.builtins ?? BUILTIN_PLUGINS;
  const builtin = await loadBuiltinPlugins(builtins, devices && new Set(devices.map((d) => d.name)), [ROOT_PORT_TYPE]);
  const user: LoadedPlugin[] = [];
  for (const spec of specs) {
    const entry = builtins.find((b) => b.name === spec.name);
    user.push(entry ? acceptPlugin(await entry.load(), entry.name, spec.options, true, "built-in") : await loadPlugin(spec, ctx.cwd, abort));
  }
  return mergePlugins(builtin, user);
}
