// The start-up bundle: dist/main.js (what tsc built) and the machines and device packages it loads, in one
// module graph written to dist/bundle/ with a chunk per dynamic import (the x86_64 machine, a built-in plugin),
// so a run resolves and compiles a few files instead of ~170. bin/vmm.js loads it when it is there.
//
// Kept outside the bundle, resolved at run time as before: what plugins share with vmm by identity (@vmm/core and
// @vmm/pci: a plugin's PciFunction and errors must be vmm's; tsyringe and reflect-metadata), the native addons
// (@vmm/kvm-native, @vmm/host-io: they find their built .node files from their own package), Node's modules, and
// xz-decompress (CommonJS, imported by @vmm/machine on the first XZ kernel).
//
// Each module a run loads costs it the loader's resolution and Node's path handling, which is what wakes TurboFan
// at start-up (issue #17), so the graph is kept to few files: no chunk is shared between chunks. esbuild would put
// its CommonJS helpers in a chunk of their own that every chunk imports, so commander (the only CommonJS left) comes
// in as an ES module with those helpers inside (commanderAsEsm); and @vmm/machine-arm64, which uses parts of
// @vmm/machine, is a bundle of its own (dist/bundle/machine-arm64.mjs, with its copy of those parts) rather than a
// chunk that would split the x86_64 machine into a shared chunk and a facade.
import { build } from "esbuild";
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const cliDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outdir = path.join(cliDir, "dist", "bundle");
const resolveFromCli = createRequire(path.join(cliDir, "package.json")).resolve;

/** Packages whose code goes into the bundle; every other bare import stays an import. */
const BUNDLED = new Set(["@vmm/machine", "@vmm/device-virtio", "@vmm/device-vesa", "@vmm/device-vfio", "commander"]);

/** Packages bundled in a file of their own beside the bundle: the bundle imports them by that file's name. */
const SEPARATE = { "@vmm/machine-arm64": { file: "machine-arm64.mjs", bundled: ["@vmm/machine-arm64", "@vmm/machine", "@vmm/fdt"] } };

/** "@scope/name/sub" -> "@scope/name"; "name/sub" -> "name". */
const packageOf = (specifier) => specifier.split("/").slice(0, specifier.startsWith("@") ? 2 : 1).join("/");

/** Bare imports of packages outside `bundled` stay imports; those of a SEPARATE package name its file. */
const keepExternal = (bundled) => ({
  name: "keep-external",
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      const name = packageOf(args.path);
      if (bundled.has(name)) return undefined;
      if (Object.hasOwn(SEPARATE, name)) return { path: `./${SEPARATE[name].file}`, external: true };
      return { path: args.path, external: true };
    });
  },
});

/**
 * The `require` commander's CommonJS calls for Node's modules (through esbuild's helper), declared in its module so
 * that the bundle does not need esbuild's own stand-in; made on first use (createRequire resolves paths, issue #17).
 */
const LAZY_REQUIRE =
  "import { createRequire as __vmmCreateRequire } from 'node:module'; let __vmmRequire; " +
  "const require = new Proxy(function require() {}, { apply: (_, self, args) => (__vmmRequire ??= __vmmCreateRequire(import.meta.url)).apply(self, args), get: (_, key) => (__vmmRequire ??= __vmmCreateRequire(import.meta.url))[key] });";

/** commander's ES module entry bundled with its CommonJS files (and esbuild's helpers for them) into one ES module. */
async function commanderEsm() {
  const result = await build({
    stdin: { contents: 'export * from "commander";', resolveDir: cliDir, loader: "js" },
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    banner: { js: LAZY_REQUIRE },
    write: false,
    logLevel: "warning",
  });
  return result.outputFiles[0].text;
}

/** `import "commander"` gets commanderEsm(): ordinary ES module code to esbuild, so no chunk of helpers is made. */
const commanderAsEsm = (contents) => ({
  name: "commander-as-esm",
  setup(b) {
    b.onResolve({ filter: /^commander$/ }, () => ({ path: "commander", namespace: "commander-esm" }));
    b.onLoad({ filter: /.*/, namespace: "commander-esm" }, () => ({ contents, loader: "js", resolveDir: cliDir }));
  },
});

// Whitespace minified (names and syntax as written): V8 keeps every module's source text, so a run's peak RSS
// carries it (issue #17: 0.4-0.5 MiB less for this bundle). The source maps lead stack traces back to src/ when
// they are on: `vmm --debug` turns them on (bin/vmm.js), or `node --enable-source-maps`.
const common = { bundle: true, format: "esm", platform: "node", target: "node20", minifyWhitespace: true, sourcemap: "linked", logLevel: "warning" };

await rm(outdir, { recursive: true, force: true });
await build({
  ...common,
  entryPoints: { main: path.join(cliDir, "dist", "main.js") },
  outdir,
  outExtension: { ".js": ".mjs" },
  splitting: true,
  plugins: [commanderAsEsm(await commanderEsm()), keepExternal(BUNDLED)],
});
for (const [name, { file, bundled }] of Object.entries(SEPARATE)) {
  await build({ ...common, entryPoints: [resolveFromCli(name)], outfile: path.join(outdir, file), plugins: [keepExternal(new Set(bundled))] });
}

// tsyringe's CommonJS build (34 files with tslib) as one file, dist/bundle/tsyringe-VERSION.cjs: src/startup/tsyringe.ts
// loads it as tsyringe's own entry module when the installed version is VERSION. Only `main` and the plain
// conditions, as Node's require picks them (tslib.js, not its ES module build).
const tsyringeEntry = resolveFromCli("tsyringe");
const tsyringeVersion = JSON.parse(readFileSync(path.resolve(path.dirname(tsyringeEntry), "../../package.json"), "utf8")).version;
await build({
  ...common,
  entryPoints: [tsyringeEntry],
  outfile: path.join(outdir, `tsyringe-${tsyringeVersion}.cjs`),
  format: "cjs",
  mainFields: ["main"],
  conditions: [],
});
