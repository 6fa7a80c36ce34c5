import { createRequire } from "node:module";
import { PLUGIN_API_VERSION } from "@vmm/core";
import type { CliContext } from "../context.js";

/** This package's version (from its package.json, next to both src/ and dist/). */
export function cliVersion(): string {
  const pkg = createRequire(import.meta.url)("../../package.json") as { version: string };
  return pkg.version;
}

export function versionCommand(ctx: CliContext): number {
  ctx.stdout(`vmm ${cliVersion()} (plugin API ${PLUGIN_API_VERSION}, node ${process.versions.node}, ${process.arch})\n`);
  return 0;
}
