// Where results go: bench/results/<runId>/ at the repository root. The root `pnpm bench` sets BENCH_RUN_ID so
// every bench of one run writes into one folder; a bench run on its own gets a timestamp.
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/** The nearest folder at or above `from` that holds pnpm-workspace.yaml, or `from` itself when there is none. */
export function repositoryRoot(from = process.cwd()): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "pnpm-workspace.yaml"))) return dir;
    if (dirname(dir) === dir) return resolve(from);
  }
}

/** BENCH_RESULTS_DIR when set (tests, other layouts), else bench/results at the repository root. */
export function resultsRoot(env: NodeJS.ProcessEnv = process.env, from?: string): string {
  return env.BENCH_RESULTS_DIR ? resolve(env.BENCH_RESULTS_DIR) : join(repositoryRoot(from), "bench", "results");
}

/** A run id that sorts by time and is safe as a folder name: 2025-01-31T12-00-00Z. */
export function timestampRunId(now = new Date()): string {
  return now.toISOString().replace(/\.\d+Z$/, "Z").replace(/:/g, "-");
}

export function currentRunId(env: NodeJS.ProcessEnv = process.env, now = new Date()): string {
  const id = env.BENCH_RUN_ID;
  if (id !== undefined && id !== "") {
    if (!/^[\w.-]+$/.test(id)) throw new Error(`BENCH_RUN_ID "${id}" must be letters, digits, '.', '_' or '-'`);
    return id;
  }
  return timestampRunId(now);
}

/** A package or bench name as part of a file name: "@vmm/kvm-native" -> "vmm-kvm-native". */
export function fileSlug(name: string): string {
  return name.replace(/^@/, "").replace(/[^\w.-]+/g, "-");
}

export const resultFileName = (pkg: string, name: string): string => `${fileSlug(pkg)}--${fileSlug(name)}.json`;
export const runFileName = (pkg: string, script: string): string => `${fileSlug(pkg)}--${fileSlug(script)}.run.json`;
export const SUMMARY_FILE = "summary.json";
