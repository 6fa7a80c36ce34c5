import type { CliContext } from "../context.js";
import type { Spec } from "../options/spec.js";
import { BUILTIN_PLUGINS, loadBuiltinPlugins } from "./builtin.js";
import { loadPlugin, mergePlugins, type LoadedPlugin } from "./load.js";

/** The built-in plugins followed by the `--plugin` ones (resolved from the working directory), checked. */
export async function loadAllPlugins(specs: readonly Spec[], ctx: CliContext): Promise<LoadedPlugin[]> {
  const builtin = await loadBuiltinPlugins(ctx.builtins ?? BUILTIN_PLUGINS);
  const user: LoadedPlugin[] = [];
  for (const spec of specs) user.push(await loadPlugin(spec, ctx.cwd));
  return mergePlugins(builtin, user);
}
