import { rootContainer } from "../root-container.js";
import { ARCHITECTURES } from "../arch/index.js";
import type { CliContext } from "../context.js";
import type { ValueCompletion } from "../options/command-line.js";
import { PLACEMENT_SCHEMA, ROOT_PORT_SCHEMA, ROOT_PORT_TYPE } from "../options/placement.js";
import { NETWORK_MODES, SugarTypes } from "../options/sugar.js";
import { loadAllPlugins } from "../plugins/all.js";
import { registerAll } from "../plugins/catalog.js";

/** The word lists a completion script offers besides the command line's own names, looked up when it is generated. */
export interface CompletionWords {
  /** Each device type `--device` takes, with the option names `--device TYPE,` completes (its own, then placement's). */
  readonly deviceTypes: ReadonlyMap<string, readonly string[]>;
  /** The modes `-n` takes. */
  readonly networkModes: readonly string[];
  /** The option names `-n MODE,` completes: the network device's, less its mode. */
  readonly networkOptions: readonly string[];
  readonly architectures: readonly string[];
}

/**
 * The device types of the built-in plugins (what `vmm devices --json` lists) and the cli's own root port, the
 * network modes and the architectures. Plugins loaded with `--plugin` are not known here: the script is generated
 * once, installed, and used from any directory.
 */
export async function completionWords(ctx: CliContext): Promise<CompletionWords> {
  const catalog = await registerAll(rootContainer.createChildContainer(), await loadAllPlugins([], ctx));
  const withPlacement = (own: readonly string[]) => [...own, ...Object.keys(PLACEMENT_SCHEMA).filter((k) => !own.includes(k))];
  const deviceTypes = new Map<string, readonly string[]>([[ROOT_PORT_TYPE, Object.keys(ROOT_PORT_SCHEMA)]]);
  for (const [type, entry] of catalog) deviceTypes.set(type, withPlacement(Object.keys(entry.type.options)));
  const network = catalog.get(SugarTypes.network);
  return {
    deviceTypes: new Map([...deviceTypes].sort(([a], [b]) => a.localeCompare(b))),
    networkModes: NETWORK_MODES,
    networkOptions: network ? withPlacement(Object.keys(network.type.options).filter((k) => k !== "mode")) : [],
    architectures: Object.keys(ARCHITECTURES),
  };
}

/**
 * What a shell offers for a value or argument: file names, a fixed list, a `NAME[,key=value...]` spec (names
 * first, then after each comma the option names of the name before the first comma), or nothing (a free value).
 */
export type ResolvedCompletion =
  | { readonly kind: "file" }
  | { readonly kind: "words"; readonly words: readonly string[] }
  | { readonly kind: "spec"; readonly id: string; readonly names: ReadonlyMap<string, readonly string[]> }
  /** The running VMs' names, listed by the shell when it completes (the control sockets in the socket directory). */
  | { readonly kind: "vm-name" }
  | { readonly kind: "none" };

/** Resolves a table entry's completion (options/command-line.ts) against the words looked up for the script. */
export function resolveCompletion(entry: { readonly complete?: ValueCompletion; readonly choices?: readonly string[] }, words: CompletionWords): ResolvedCompletion {
  const complete = entry.complete ?? (entry.choices ? { words: entry.choices } : undefined);
  if (complete === undefined) return { kind: "none" };
  if (complete === "file") return { kind: "file" };
  if (complete === "vm-name") return { kind: "vm-name" };
  if (complete === "architecture") return { kind: "words", words: words.architectures };
  if (complete === "device-type") return { kind: "spec", id: "device", names: words.deviceTypes };
  if (complete === "network-mode") return { kind: "spec", id: "network", names: new Map(words.networkModes.map((m) => [m, m === "none" ? [] : words.networkOptions])) };
  return { kind: "words", words: complete.words };
}

/** A spec's names grouped by identical option lists (one shell `case` arm each), in first-appearance order. */
export function namesByOptions(names: ReadonlyMap<string, readonly string[]>): Array<{ names: string[]; options: readonly string[] }> {
  const groups = new Map<string, { names: string[]; options: readonly string[] }>();
  for (const [name, options] of names) {
    if (!options.length) continue;
    const key = options.join(" ");
    const group = groups.get(key) ?? { names: [], options };
    group.names.push(name);
    groups.set(key, group);
  }
  return [...groups.values()];
}
