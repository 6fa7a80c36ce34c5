import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { PluginError } from "@vmm/core";

/** Where a `--plugin` argument points: the module file to import. */
export interface ResolvedPlugin {
  /** What the user wrote, for messages. */
  readonly specifier: string;
  readonly file: string;
  readonly url: string;
}

/** A path rather than a package name: `./x`, `../x`, `/x`, `.`, `..` (and Windows-style `.\x`). */
export function isPathSpecifier(specifier: string): boolean {
  return /^(\.{1,2}([\\/]|$)|\/)/.test(specifier);
}

/**
 * The nearest directory at or above `cwd` whose node_modules holds package `name`, as an ES module import from
 * `cwd` would find it. Unlike require, imports ignore NODE_PATH (which package managers set for their scripts),
 * so a plugin is only found where the user installed it.
 */
function packageBase(name: string, cwd: string): string | undefined {
  const packageName = name.startsWith("@") ? name.split("/").slice(0, 2).join("/") : name.split("/")[0]!;
  for (let dir = cwd; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, "node_modules", packageName, "package.json"))) return dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/**
 * Resolves a plugin from `cwd`: a package name through the node_modules directories above `cwd` (honouring the
 * package's "exports" and "main"), or a path (a file, or a package directory through its "main") relative to `cwd`.
 */
export function resolvePlugin(specifier: string, cwd: string): ResolvedPlugin {
  const isPath = isPathSpecifier(specifier);
  const base = isPath ? cwd : packageBase(specifier, cwd);
  const target = isPath ? path.resolve(cwd, specifier) : specifier;
  let file: string;
  try {
    if (base === undefined) throw Object.assign(new Error(`cannot find package '${specifier}'`), { code: "MODULE_NOT_FOUND" });
    file = createRequire(path.join(base, "noop.js")).resolve(target);
  } catch (error) {
    throw new PluginError(specifier, notFound(specifier, target, cwd, error), { cause: error });
  }
  return { specifier, file, url: pathToFileURL(file).href };
}

function notFound(specifier: string, target: string, cwd: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ERR_PACKAGE_PATH_NOT_EXPORTED") {
    return `not loadable: its package.json "exports" has no entry for the "require" or "default" condition`;
  }
  if (isPathSpecifier(specifier)) return `not found: no module at ${target}`;
  return `not found from ${cwd} (install it there, e.g. npm install ${specifier}, or give a path)`;
}
