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
 * Resolves a plugin the way Node resolves a `require` from a file in `cwd`: a package name through the
 * node_modules directories above `cwd` (honouring the package's "exports"), or a path (a file, or a package
 * directory through its "main") relative to `cwd`.
 */
export function resolvePlugin(specifier: string, cwd: string): ResolvedPlugin {
  const require = createRequire(path.join(cwd, "noop.js"));
  const target = isPathSpecifier(specifier) ? path.resolve(cwd, specifier) : specifier;
  let file: string;
  try {
    file = require.resolve(target);
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
