// The start-up bundle: dist/main.js (what tsc built) and the machines and device packages it loads, in one
// module graph written to dist/bundle/ with a chunk per dynamic import (an architecture's machine, a built-in
// plugin), so a run resolves and compiles a few files instead of ~170. bin/vmm.js loads it when it is there.
//
// Kept outside the bundle, resolved at run time as before: what plugins share with vmm by identity (@vmm/core and
// @vmm/pci: a plugin's PciFunction and errors must be vmm's; tsyringe and reflect-metadata), the native addons
// (@vmm/kvm-native, @vmm/host-io: they find their built .node files from their own package), and Node's modules.
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const cliDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outdir = path.join(cliDir, "dist", "bundle");

/** Packages whose code goes into the bundle; every other bare import stays an import. */
const BUNDLED = new Set([
  "@vmm/machine",
  "@vmm/machine-arm64",
  "@vmm/fdt",
  "@vmm/device-virtio",
  "@vmm/device-vesa",
  "@vmm/device-vfio",
  "commander",
  "xz-decompress",
]);

/** "@scope/name/sub" -> "@scope/name"; "name/sub" -> "name". */
const packageOf = (specifier) => specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/");

const keepExternal = {
  name: "keep-external",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (BUNDLED.has(packageOf(args.path)) ? undefined : { path: args.path, external: true }));
  },
};

await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: { main: path.join(cliDir, "dist", "main.js") },
  outdir,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  plugins: [keepExternal],
  // CommonJS inside the bundle (commander, xz-decompress) calls require for Node's modules.
  banner: { js: "import { createRequire as __vmmCreateRequire } from 'node:module'; const require = __vmmCreateRequire(import.meta.url);" },
  logLevel: "warning",
});

// tsyringe's CommonJS build (34 files with tslib) as one file, dist/bundle/tsyringe-VERSION.cjs: src/startup/tsyringe.ts
// loads it as tsyringe's own entry module when the installed version is VERSION. Only `main` and the plain
// conditions, as Node's require picks them (tslib.js, not its ES module build).
const tsyringeEntry = createRequire(path.join(cliDir, "package.json")).resolve("tsyringe");
const tsyringeVersion = JSON.parse(readFileSync(path.resolve(path.dirname(tsyringeEntry), "../../package.json"), "utf8")).version;
await build({
  entryPoints: [tsyringeEntry],
  outfile: path.join(outdir, `tsyringe-${tsyringeVersion}.cjs`),
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  mainFields: ["main"],
  conditions: [],
  logLevel: "warning",
});
