import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The URL of one of this package's compiled modules, relative to `base` (a module's import.meta.url). A worker
 * thread loads plain JavaScript: when `base` is this package's TypeScript source (a test runner), the module of
 * the same name in the build output (dist/ beside src/) is used.
 */
export function builtModule(relative: string, base: string): URL {
  const url = new URL(relative, base);
  if (existsSync(fileURLToPath(url))) return url;
  const at = url.pathname.lastIndexOf("/src/");
  if (at < 0) return url;
  return new URL(`${url.pathname.slice(0, at)}/dist/${url.pathname.slice(at + 5)}`, url);
}
