import { readFileSync } from "node:fs";
import { createRequire, Module } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { compileFunction } from "node:vm";

type Tsyringe = typeof import("tsyringe");

const require = createRequire(import.meta.url);

/** Where the build writes tsyringe in one file (scripts/bundle.mjs): dist/bundle/, beside this module's dist/startup/. */
const PACK_DIR = fileURLToPath(new URL("../bundle/", import.meta.url));

/** The installed tsyringe's version, read from the package.json above its CommonJS entry (dist/cjs/index.js). */
function installedVersion(entry: string): string | undefined {
  try {
    const manifest = JSON.parse(readFileSync(path.resolve(path.dirname(entry), "../../package.json"), "utf8")) as { name?: string; version?: string };
    return manifest.name === "tsyringe" ? manifest.version : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs the one-file build as the module `entry` and puts it in the module cache under that name: what Node's
 * loader does for the entry itself, with its 33 relative requires already inside.
 */
function installPack(entry: string, packFile: string, source: string): void {
  const module = new Module(entry);
  module.filename = entry;
  module.paths = require.resolve.paths("tsyringe") ?? [];
  const body = compileFunction(source, ["exports", "require", "module", "__filename", "__dirname"], { filename: packFile });
  body.call(module.exports, module.exports, createRequire(entry), module, entry, path.dirname(entry));
  module.loaded = true;
  require.cache[entry] = module;
}

/**
 * tsyringe, the one instance vmm and every plugin share. Its CommonJS build is 34 files with tslib, each resolved,
 * read and compiled by the module loader: ~6 ms and ~4 MiB of a `vmm run`'s start-up (issue #17). The build writes
 * them as one file for the version it was built with; when the installed tsyringe has that version, that file
 * becomes tsyringe's entry module in the module cache, so `require("tsyringe")` and `import "tsyringe"` (vmm's,
 * the machines', a plugin's) all return this instance, as they would the entry loaded file by file. Otherwise, or
 * when another module loaded tsyringe first, it is required as usual.
 */
export function requireTsyringe(packDir: string = PACK_DIR): Tsyringe {
  const entry = require.resolve("tsyringe");
  const version = require.cache[entry] ? undefined : installedVersion(entry);
  if (version) {
    const packFile = path.join(packDir, `tsyringe-${version}.cjs`);
    let source: string | undefined;
    try {
      source = readFileSync(packFile, "utf8");
    } catch {
      // Not built (tsc alone) or built for another version: the files as installed.
    }
    if (source !== undefined) installPack(entry, packFile, source);
  }
  return require("tsyringe") as Tsyringe;
}
