// recordBench: what a bench calls once at its end, after printing its own table as it always did. Writes the
// figures with the host facts to bench/results/<runId>/<package>--<name>.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { evaluateFigure, type Figure, type FigureInput } from "./figure.js";
import { hostFacts, type HostFacts } from "./host.js";
import { currentRunId, repositoryRoot, resultFileName, resultsRoot } from "./location.js";

export const RESULT_SCHEMA = 1;

export interface BenchInput {
  /** The package's name, "@vmm/kvm-native". */
  package: string;
  /** The bench's short name, unique in its package: "exit-cost". */
  name: string;
  /** One line saying what is measured. */
  title: string;
  rows: FigureInput[];
}

export interface BenchResult {
  kind: "bench-result";
  schema: number;
  runId: string;
  package: string;
  name: string;
  title: string;
  /** The script bench-run started (links the result to its run record), when started by bench-run. */
  script?: string;
  recordedAt: string;
  host: HostFacts;
  figures: Figure[];
  /** Why the bench measured nothing (no /dev/kvm, a missing tool); figures is then empty. */
  skipped?: string;
}

export interface RecordOptions {
  env?: NodeJS.ProcessEnv;
  /** Where the repository is (for the default results folder and the git facts); the working directory's. */
  cwd?: string;
  now?: Date;
  /** Print the "recorded" line (default true). */
  log?: (line: string) => void;
}

export interface Recorded {
  path: string;
  result: BenchResult;
}

function write(result: Omit<BenchResult, "runId" | "recordedAt" | "host" | "kind" | "schema">, options: RecordOptions): Recorded {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const now = options.now ?? new Date();
  const runId = currentRunId(env, now);
  const full: BenchResult = {
    kind: "bench-result",
    schema: RESULT_SCHEMA,
    runId,
    ...result,
    ...(env.BENCH_SCRIPT ? { script: env.BENCH_SCRIPT } : {}),
    recordedAt: now.toISOString(),
    host: hostFacts(repositoryRoot(cwd)),
  };
  const dir = join(resultsRoot(env, cwd), runId);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, resultFileName(result.package, result.name));
  writeFileSync(path, `${JSON.stringify(full, null, 2)}\n`);
  const what = full.skipped ? `skip (${full.skipped})` : `${full.figures.length} figure${full.figures.length === 1 ? "" : "s"}`;
  (options.log ?? console.log)(`bench-kit: recorded ${what} in ${relative(cwd, path) || path}`);
  return { path, result: full };
}

function checkNames(pkg: string, name: string, env: NodeJS.ProcessEnv): void {
  if (!pkg) throw new Error("recordBench: package is required");
  if (!name) throw new Error(`recordBench (${pkg}): name is required`);
  // bench-run links results to its run records by package and script: a misnamed package would orphan them.
  if (env.BENCH_PACKAGE && env.BENCH_PACKAGE !== pkg) throw new Error(`recordBench: package "${pkg}", but bench-run runs it in ${env.BENCH_PACKAGE}`);
}

export function recordBench(bench: BenchInput, options: RecordOptions = {}): Recorded {
  checkNames(bench.package, bench.name, options.env ?? process.env);
  if (bench.rows.length === 0) throw new Error(`recordBench ${bench.package} ${bench.name}: no figures (use recordSkip)`);
  const seen = new Set<string>();
  for (const row of bench.rows) {
    if (seen.has(row.metric)) throw new Error(`recordBench ${bench.package} ${bench.name}: metric "${row.metric}" twice`);
    seen.add(row.metric);
  }
  const figures = bench.rows.map(evaluateFigure);
  return write({ package: bench.package, name: bench.name, title: bench.title, figures }, options);
}

/** For a bench that cannot measure here: the summary then says why instead of reporting a missing result. */
export function recordSkip(bench: Omit<BenchInput, "rows"> & { reason: string }, options: RecordOptions = {}): Recorded {
  checkNames(bench.package, bench.name, options.env ?? process.env);
  return write({ package: bench.package, name: bench.name, title: bench.title, figures: [], skipped: bench.reason }, options);
}
