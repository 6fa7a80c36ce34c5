import { readFileSync } from "node:fs";
import { PLUGIN_API_VERSION } from "@vmm/core";
import type { CliContext } from "../context.js";

let version: string | undefined;

/**
 * This package's version, from its package.json two levels up from src/commands/, dist/commands/ and dist/bundle/.
 * Read as a file: a require of it would resolve the path through the module loader at every start-up.
 */
export function cliVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  return version;
}

export function versionCommand(ctx: CliContext): number {
  ctx.stdout(`vmm ${cliVersion()} (plugin API ${PLUGIN_API_VERSION}, node ${process.versions.node}, ${process.arch})\n`);
  return 0;
}
