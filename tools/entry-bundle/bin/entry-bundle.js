#!/usr/bin/env node
// entry-bundle [ENTRY [OUT]]: writes the package's built entry (default dist/index.js) and every module of the
// package it imports, in the current directory, as one ES module (default dist/index.bundle.js) with a source map.
// Every bare import (other packages, Node's modules) stays an import, so a package shared by identity is still one
// module instance. The output sits beside the entry, so `import.meta.url` names the same folder as before.
import { build } from "esbuild";
import { existsSync } from "node:fs";
import path from "node:path";

const [entry = "dist/index.js", out = "dist/index.bundle.js"] = process.argv.slice(2);
if (!existsSync(entry)) {
  process.stderr.write(`entry-bundle: ${path.resolve(entry)} does not exist (run tsc first)\n`);
  process.exit(1);
}
if (path.dirname(path.resolve(entry)) !== path.dirname(path.resolve(out))) {
  process.stderr.write("entry-bundle: the bundle must be written beside its entry (modules find files from import.meta.url)\n");
  process.exit(1);
}
try {
  await build({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    packages: "external",
    // V8 keeps a module's source text for as long as the process runs: whitespace is minified (names and syntax
    // as written), and the source map leads stack traces back when source maps are on (`--enable-source-maps`).
    minifyWhitespace: true,
    sourcemap: true,
    logLevel: "warning",
  });
} catch {
  // esbuild has printed what failed.
  process.exit(1);
}
