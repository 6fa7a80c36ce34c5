import {
  assertPlugin,
  PluginError,
  validateOptions,
  VmmError,
  type OptionValues,
  type VmmPlugin,
} from "@vmm/core";
import type { DependencyContainer } from "tsyringe";
import { describe, OptionsError, UsageError } from "../errors.js";
import type { Spec } from "../options/spec.js";
import { settleWithin, StoppedError } from "../settle.js";
import { resolvePlugin } from "./resolve.js";

/** A plugin ready to register: the checked module and its validated plugin-wide options. */
export interface LoadedPlugin {
  readonly plugin: VmmPlugin;
  readonly options: OptionValues;
  /** Where it came from: a file path, or "built-in". */
  readonly source: string;
  readonly builtin: boolean;
}

/** Validates plugin-wide options; problems name the plugin and the option and are usage errors. */
export function pluginOptions(plugin: VmmPlugin, raw: Spec["options"]): OptionValues {
  try {
    return validateOptions(plugin.options ?? {}, raw, { plugin: plugin.name });
  } catch (error) {
    if (error instanceof PluginError) throw new OptionsError(error);
    throw error;
  }
}

/** Checks a module namespace as a plugin (API version, shape) and validates its options. */
export function acceptPlugin(module: unknown, source: string, raw: Spec["options"], builtin: boolean, where: string): LoadedPlugin {
  const plugin = assertPlugin(module, source);
  return { plugin, options: pluginOptions(plugin, raw), source: where, builtin };
}

/** Resolves (from `cwd`), imports and checks one `--plugin NAME[,key=value...]`. */
export async function loadPlugin(spec: Spec, cwd: string, abort?: AbortSignal): Promise<LoadedPlugin> {
  const resolved = resolvePlugin(spec.name, cwd);
  let module: unknown;
  try {
    // A module's top-level await may never settle either.
    module = await settleWithin(import(resolved.url), (limit) => new Error(`its module did not finish loading within ${limit}`), abort);
  } catch (error) {
    if (error instanceof StoppedError) throw error;
    throw new PluginError(spec.name, `failed to load ${resolved.file}: ${describe(error)}`, { cause: error });
  }
  return acceptPlugin(module, spec.name, spec.options, false, resolved.file);
}

/**
 * Puts user plugins after the built-in ones. A user plugin with a built-in's name replaces it (to pass it
 * options); the same plugin twice is a usage error.
 */
export function mergePlugins(builtin: readonly LoadedPlugin[], user: readonly LoadedPlugin[]): LoadedPlugin[] {
  const out = [...builtin];
  const seen = new Set<string>();
  for (const p of user) {
    if (seen.has(p.plugin.name)) throw new UsageError(`plugin ${p.plugin.name} is given twice`);
    seen.add(p.plugin.name);
    const i = out.findIndex((b) => b.plugin.name === p.plugin.name);
    if (i >= 0) out.splice(i, 1);
    out.push(p);
  }
  return out;
}

/** Runs one plugin's `register` into the VM's container; a throw names the plugin. */
export async function registerPlugin(container: DependencyContainer, loaded: LoadedPlugin, abort?: AbortSignal): Promise<void> {
  const name = loaded.plugin.name;
  try {
    await settleWithin(
      loaded.plugin.register(container, loaded.options),
      (limit) => new PluginError(name, `register did not finish within ${limit} (a promise that never settles?)`),
      abort,
    );
  } catch (error) {
    if (error instanceof PluginError || error instanceof StoppedError) throw error;
    const text = error instanceof VmmError ? error.message : describe(error);
    throw new PluginError(loaded.plugin.name, `register failed: ${text}`, { cause: error });
  }
}
