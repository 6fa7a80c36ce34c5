#!/usr/bin/env node
// The vmm command.
import { createRequire } from "node:module";
import { setFlagsFromString } from "node:v8";

// Start-up code runs once, yet the module loaders' path handling makes one of Node's path helpers hot enough for
// TurboFan, whose compiler then adds about 3.5 MiB to the peak RSS of a short run (issue #17's 55 MiB). Four times
// V8's default interrupt budget (66 KiB of bytecode) keeps start-up in the interpreter and baseline code; a
// long-running guest's hot paths are still optimized, after four times as many ticks. A budget given on the
// command line wins.
if (!process.execArgv.some((arg) => arg.startsWith("--interrupt-budget"))) setFlagsFromString("--interrupt-budget=270336");

// reflect-metadata must be loaded before anything that uses tsyringe; it is CommonJS, and requiring it spares the
// start-up Node's scan of its source that an ESM import makes (cjs-module-lexer).
createRequire(import.meta.url)("reflect-metadata");

const debug = process.argv.includes("--debug");
// The bundles are minified; with --debug, stack traces go through their source maps back to the sources.
if (debug) process.setSourceMapsEnabled(true);

// Last resort for errors thrown outside any command's control (a plugin's stray timer or promise). While a VM
// runs, `vmm run` listens itself and stops the VM cleanly; this only acts when nobody else listens.
for (const event of ["uncaughtException", "unhandledRejection"]) {
  process.on(event, (error) => {
    if (process.listenerCount(event) > 1) return;
    const text = error instanceof Error ? error.message : String(error);
    process.stderr.write(`vmm: error: internal error: ${text.replace(/\s*\n\s*/g, " ")}\n`);
    if (debug && error instanceof Error && error.stack) process.stderr.write(error.stack + "\n");
    process.exit(1);
  });
}

// The start-up bundle (scripts/bundle.mjs) when the build made one; the modules tsc wrote otherwise.
const { main } = await import("../dist/bundle/main.mjs").catch((error) => {
  if (error?.code !== "ERR_MODULE_NOT_FOUND" || !String(error.message).includes("dist/bundle/main.mjs")) throw error;
  return import("../dist/main.js");
});
const status = await main(process.argv.slice(2));
// The VM and its devices are closed by now; do not wait for stray handles (sockets, timers) of plugins.
process.exit(status);
