// The three commands, as functions of their arguments that return an exit status (the bin/ files call them).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { runBenchScripts } from "./bench-run.js";
import { renderComparison } from "./compare.js";
import { repositoryRoot, resultsRoot, SUMMARY_FILE } from "./location.js";
import { latestRun, readRun, runDir, workspaceBenchPackages, type RunFiles } from "./read-run.js";
import { buildSummary, renderSummary, type Summary } from "./summary.js";

export interface CliContext {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  log?: (text: string) => void;
}

class UsageError extends Error {}

function context(ctx: CliContext) {
  return { env: ctx.env ?? process.env, cwd: ctx.cwd ?? process.cwd(), log: ctx.log ?? ((t: string) => console.log(t)) };
}

function guard(name: string, usage: string, log: (t: string) => void, body: () => number): number {
  try {
    return body();
  } catch (e) {
    log(e instanceof UsageError ? `${name}: ${e.message}\nusage: ${usage}` : `${name}: ${(e as Error).message}`);
    return 2;
  }
}

const SUMMARY_USAGE = "bench-summary [RUN_ID | DIR] [--runner-status N] [--expect-workspace]";

/**
 * bench-summary: prints the run's table and writes summary.json into the run's folder. The run is the argument,
 * else BENCH_RUN_ID, else the latest. Exit status 1 when a bench failed or is missing (or the runner failed).
 */
export function summaryMain(argv: readonly string[], ctx: CliContext = {}): number {
  const { env, cwd, log } = context(ctx);
  return guard("bench-summary", SUMMARY_USAGE, log, () => {
    let run: string | undefined;
    let runnerStatus: number | undefined;
    let expectWorkspace = false;
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!;
      if (a === "--expect-workspace") expectWorkspace = true;
      else if (a === "--runner-status") {
        runnerStatus = Number(argv[++i]);
        if (!Number.isInteger(runnerStatus)) throw new UsageError("--runner-status needs an integer");
      } else if (a.startsWith("-") || run !== undefined) throw new UsageError(`unexpected argument ${a}`);
      else run = a;
    }
    const root = resultsRoot(env, cwd);
    const dir = run !== undefined ? runDir(root, run) : env.BENCH_RUN_ID ? join(root, env.BENCH_RUN_ID) : latestRun(root);
    if (!dir) throw new Error(`no runs under ${root}`);
    // A run where every bench failed before recording anything still gets a summary that says so.
    const files: RunFiles = existsSync(dir) ? readRun(dir) : { runId: run ?? env.BENCH_RUN_ID ?? "", dir, results: [], runs: [] };
    const expectedPackages = expectWorkspace ? workspaceBenchPackages(repositoryRoot(cwd)).map((p) => p.name) : undefined;
    const summary = buildSummary(files, { ...(expectedPackages ? { expectedPackages } : {}), ...(runnerStatus !== undefined ? { runnerStatus } : {}) });
    mkdirSync(dir, { recursive: true });
    const path = join(dir, SUMMARY_FILE);
    writeFileSync(path, `${JSON.stringify(summary, null, 2)}\n`);
    log(renderSummary(summary));
    log(`\nsummary written to ${relative(cwd, path) || path}`);
    return summary.ok ? 0 : 1;
  });
}

function loadSummary(root: string, arg: string): Summary {
  const dir = runDir(root, arg);
  const file = join(dir, SUMMARY_FILE);
  // summary.json when the run has one; otherwise built from the result files (a bench run on its own).
  if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8")) as Summary;
  return buildSummary(readRun(dir));
}

const COMPARE_USAGE = "bench-compare RUN_A RUN_B   (run ids under bench/results, or folders)";

/** bench-compare: the change of every figure from run A to run B. */
export function compareMain(argv: readonly string[], ctx: CliContext = {}): number {
  const { env, cwd, log } = context(ctx);
  return guard("bench-compare", COMPARE_USAGE, log, () => {
    if (argv.length !== 2 || argv.some((a) => a.startsWith("-"))) throw new UsageError("needs two runs");
    const root = resultsRoot(env, cwd);
    log(renderComparison(loadSummary(root, argv[0]!), loadSummary(root, argv[1]!)));
    return 0;
  });
}

/** bench-run SCRIPT...: runs each bench script with node in this package and records its status and time. */
export function benchRunMain(argv: readonly string[], ctx: CliContext = {}): number {
  const { env, cwd, log } = context(ctx);
  return guard("bench-run", "bench-run SCRIPT...", log, () => {
    const scripts = argv[0] === "--" ? argv.slice(1) : argv;
    if (scripts.length === 0) throw new UsageError("needs at least one script");
    return runBenchScripts(scripts, { env, cwd });
  });
}
