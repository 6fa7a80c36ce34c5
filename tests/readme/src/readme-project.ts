// "The directory you run vmm from": a project whose node_modules holds the plugins the README's commands name.
// The README's ```ts plugin snippets become packages under the names they declare (`name: "@x/device-scratch"`),
// compiled by tsc as a plugin author would (strict: this is their type check); the repository's example plugins
// are linked from the copy being tested.
import { spawnSync } from "node:child_process";
import { mkdirSync, realpathSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export interface SnippetPackage {
  /** The package name the snippet's plugin declares. */
  readonly name: string;
  readonly dir: string;
  /** tsc's diagnostics ("" when it type-checks). */
  readonly diagnostics: string;
}

/** The plugin name a README snippet declares (its definePlugin's `name`). */
export function snippetPluginName(code: string): string {
  const name = /definePlugin\(\{\s*name:\s*"([^"]+)"/.exec(code)?.[1];
  if (!name) throw new Error(`a README ts snippet declares no plugin name (definePlugin({ name: "..." })):\n${code}`);
  return name;
}

/** The packages a snippet imports (`@vmm/core`, `@vmm/pci`). */
export function snippetImports(code: string): string[] {
  return [...new Set([...code.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]!))];
}

function link(target: string, at: string): void {
  mkdirSync(dirname(at), { recursive: true });
  symlinkSync(target, at);
}

/**
 * Writes `code` as package `name` in `dir` and compiles it with the copy's tsc. Its imports resolve to the very
 * modules `vmm` of the copy loads (the cli's own dependencies), as peer dependencies do in a user's project.
 */
export function compileSnippet(code: string, dir: string, repository: string): SnippetPackage {
  const name = snippetPluginName(code);
  mkdirSync(join(dir, "src"), { recursive: true });
  writeFileSync(join(dir, "src", "index.ts"), code);
  const peers = snippetImports(code);
  const cliModules = join(repository, "packages", "cli", "node_modules");
  for (const peer of peers) link(realpathSync(join(cliModules, peer)), join(dir, "node_modules", peer));
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name, version: "1.0.0", type: "module", exports: { ".": "./dist/index.js" }, peerDependencies: Object.fromEntries(peers.map((p) => [p, "*"])) }),
  );
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2023"], types: [], strict: true, noImplicitOverride: true, skipLibCheck: true, rootDir: "src", outDir: "dist" },
      include: ["src"],
    }),
  );
  const tsc = join(repository, "node_modules", "typescript", "bin", "tsc");
  const r = spawnSync(process.execPath, [tsc, "-p", "tsconfig.json", "--pretty", "false"], { cwd: dir, encoding: "utf8" });
  return { name, dir, diagnostics: r.status === 0 ? "" : `${r.stdout}${r.stderr}`.trim() || `tsc exited with ${r.status}` };
}

/** Makes `project` with node_modules/NAME linked to each of `packages` (NAME -> package directory). */
export function makeProject(project: string, packages: ReadonlyMap<string, string>): void {
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "readme-project", version: "1.0.0", private: true }));
  for (const [name, dir] of packages) link(dir, join(project, "node_modules", name));
}
