// Reading what one run left in bench/results/<runId>/, and which workspace packages have a bench to run.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import type { RunRecord } from "./bench-run.js";
import { SUMMARY_FILE } from "./location.js";
import type { BenchResult } from "./record.js";

export interface RunFiles {
  runId: string;
  dir: string;
  results: BenchResult[];
  runs: RunRecord[];
}

export function readRun(dir: string): RunFiles {
  if (!existsSync(dir)) throw new Error(`no bench results at ${dir}`);
  const run: RunFiles = { runId: basename(dir), dir, results: [], runs: [] };
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith(".json") || file === SUMMARY_FILE) continue;
    let data: { kind?: string };
    try {
      data = JSON.parse(readFileSync(join(dir, file), "utf8")) as { kind?: string };
    } catch (e) {
      throw new Error(`${join(dir, file)}: ${(e as Error).message}`);
    }
    if (data.kind === "bench-result") run.results.push(data as BenchResult);
    else if (data.kind === "bench-run") run.runs.push(data as RunRecord);
  }
  // Run order: the order the benches finished in.
  run.results.sort((a, b) => a.recordedAt.localeCompare(b.recordedAt));
  run.runs.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  return run;
}

/** The run folder an argument names: a path to a folder, or a run id under the results root. */
export function runDir(root: string, arg: string): string {
  if (existsSync(arg) && statSync(arg).isDirectory()) return arg;
  return join(root, arg);
}

/** The most recently written run under the results root. */
export function latestRun(root: string): string | undefined {
  if (!existsSync(root)) return undefined;
  const dirs = readdirSync(root)
    .map((name) => join(root, name))
    .filter((p) => statSync(p).isDirectory())
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return dirs[0];
}

export interface BenchPackage {
  name: string;
  dir: string;
}

/** Workspace packages with a "bench" script, from pnpm-workspace.yaml's package globs ("dir/*" or a folder). */
export function workspaceBenchPackages(root: string): BenchPackage[] {
  const yaml = readFileSync(join(root, "pnpm-workspace.yaml"), "utf8");
  const globs: string[] = [];
  let inPackages = false;
  for (const line of yaml.split("\n")) {
    if (/^\S/.test(line)) inPackages = /^packages:\s*$/.test(line);
    const m = inPackages ? /^\s+-\s+["']?([^"'#\s]+)["']?/.exec(line) : null;
    if (m) globs.push(m[1]!);
  }
  const dirs = globs.flatMap((g) => {
    if (!g.endsWith("/*")) return [join(root, g)];
    const parent = join(root, g.slice(0, -2));
    return existsSync(parent) ? readdirSync(parent).map((d) => join(parent, d)) : [];
  });
  const found: BenchPackage[] = [];
  for (const dir of dirs.sort()) {
    const file = join(dir, "package.json");
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: string; scripts?: Record<string, string> };
    if (pkg.name && pkg.scripts?.bench) found.push({ name: pkg.name, dir });
  }
  return found;
}
