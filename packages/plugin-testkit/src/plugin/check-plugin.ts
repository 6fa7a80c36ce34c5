import { assertPlugin, registerQuirk, Tokens, validateOptions, type DeviceQuirk, type DeviceType, type OptionValues, type VmmPlugin } from "@vmm/core";
import { container as rootContainer, type DependencyContainer, type InjectionToken } from "tsyringe";
import { ConformanceError } from "../errors.js";
import { schemaProblems } from "./option-specs.js";
import { describeToken, recordingContainer } from "./recording-container.js";

/** The same rule the cli applies to `--device TYPE` names. */
const TYPE_NAME = /^[a-z0-9][a-z0-9._-]*$/;

export interface CheckPluginOptions {
  /** Plugin-wide option values `register` gets (validated against the plugin's schema; default: its defaults). */
  readonly options?: Readonly<Record<string, unknown>>;
  /**
   * Tokens besides device types and quirks that `register` may bind (services the plugin's devices share).
   * Anything else it binds is a problem.
   */
  readonly allowedTokens?: readonly InjectionToken[];
  /** The container whose fresh child `register` binds into (default: tsyringe's root container, as the cli does). */
  readonly container?: DependencyContainer;
}

/** What `checkPlugin` found in a conforming plugin. */
export interface PluginReport {
  /** The checked default export. */
  readonly plugin: VmmPlugin;
  /** The device types `register` bound, as the VMM resolves them (`plugin` set to the plugin's name). */
  readonly deviceTypes: readonly DeviceType[];
  /** The quirks `register` bound (`plugin` set). */
  readonly quirks: readonly DeviceQuirk[];
  /** Every token `register` bound, in order, as readable names. */
  readonly bindings: readonly string[];
  /** The fresh child container `register` bound into (to create devices from the registered types). */
  readonly container: DependencyContainer;
}

/** A device type's own problems, each naming it. */
function deviceTypeProblems(value: unknown, pluginName: string): string[] {
  const t = value as Partial<DeviceType> | undefined;
  if (!t || typeof t !== "object") return ["a registered device type is not an object"];
  const where = `device type ${JSON.stringify(t.type ?? "?")}`;
  const problems: string[] = [];
  if (typeof t.type !== "string" || !TYPE_NAME.test(t.type)) problems.push(`${where}: type must be a lowercase name (a-z, 0-9, '.', '_', '-')`);
  if (typeof t.description !== "string" || !t.description.trim()) problems.push(`${where}: has no description`);
  if (typeof t.create !== "function") problems.push(`${where}: create is not a function`);
  problems.push(...schemaProblems(t.options, where, pluginName));
  return problems;
}

/** A quirk's problems as core's registerQuirk sees them (into a scratch container). */
function quirkProblems(quirk: DeviceQuirk, pluginName: string): string[] {
  try {
    registerQuirk(rootContainer.createChildContainer(), pluginName, quirk);
    return [];
  } catch (error) {
    return [(error as Error).message];
  }
}

function resolveOwn<T>(container: DependencyContainer, token: InjectionToken<T>): T[] {
  return container.isRegistered(token, false) ? container.resolveAll(token) : [];
}

/**
 * Checks a plugin module (or its default export) as the VMM would load it, and more strictly: core's
 * assertPlugin; a well-formed plugin-wide option schema; `register` run into a fresh child container binding
 * only device types and quirks (and `allowedTokens`), at least one of them; every device type with a lowercase
 * type name, a description and a well-formed option schema whose defaults are valid; every quirk well-formed by
 * core's rules, with a match; no duplicate type or quirk names. Throws a ConformanceError listing every problem;
 * returns what it found.
 */
export async function checkPlugin(moduleOrPlugin: unknown, options: CheckPluginOptions = {}): Promise<PluginReport> {
  const source = "the plugin under test";
  let plugin: VmmPlugin;
  try {
    plugin = assertPlugin(moduleOrPlugin, source);
  } catch (error) {
    throw new ConformanceError(source, [(error as Error).message]);
  }
  const name = plugin.name;
  const problems: string[] = [];
  if (plugin.options !== undefined) problems.push(...schemaProblems(plugin.options, "plugin-wide options", name));
  if (problems.length) throw new ConformanceError(`plugin ${name}`, problems);

  let values: OptionValues;
  try {
    values = validateOptions(plugin.options ?? {}, options.options ?? {}, { plugin: name });
  } catch (error) {
    throw new ConformanceError(`plugin ${name}`, [`the plugin-wide options given to checkPlugin are invalid: ${(error as Error).message}`]);
  }

  const child = (options.container ?? rootContainer).createChildContainer();
  const bound: InjectionToken[] = [];
  try {
    await plugin.register(recordingContainer(child, bound), values);
  } catch (error) {
    throw new ConformanceError(`plugin ${name}`, [`register threw: ${error instanceof Error ? error.message : String(error)}`]);
  }

  const allowed = new Set<InjectionToken>([Tokens.DeviceType, Tokens.Quirk, ...(options.allowedTokens ?? [])]);
  for (const token of new Set(bound)) {
    if (!allowed.has(token)) {
      problems.push(`register bound ${describeToken(token)}: a plugin binds device types (registerDeviceType) and quirks (registerQuirk) only (pass allowedTokens for a service it means to share)`);
    }
  }
  const deviceTypes = resolveOwn(child, Tokens.DeviceType);
  const quirks = resolveOwn(child, Tokens.Quirk);
  if (deviceTypes.length === 0 && quirks.length === 0) problems.push("register bound no device type and no quirk");

  const typeNames = new Set<string>();
  for (const type of deviceTypes) {
    problems.push(...deviceTypeProblems(type, name));
    if (typeof type?.type === "string") {
      if (typeNames.has(type.type)) problems.push(`device type ${JSON.stringify(type.type)} is registered twice`);
      typeNames.add(type.type);
    }
  }
  const quirkNames = new Set<string>();
  for (const quirk of quirks) {
    problems.push(...quirkProblems(quirk, name));
    if (typeof quirk?.name === "string") {
      if (quirkNames.has(quirk.name)) problems.push(`quirk ${JSON.stringify(quirk.name)} is registered twice`);
      quirkNames.add(quirk.name);
    }
  }
  if (problems.length) throw new ConformanceError(`plugin ${name}`, problems);
  return { plugin, deviceTypes, quirks, bindings: bound.map(describeToken), container: child };
}
