// bench-run: runs a package's bench scripts one after another (each even when an earlier one failed) and writes
// a run record per script: its exit status and how long it took. The summary joins these with the results, so
// a bench that crashed or never recorded is named, and every bench's run time is known.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { currentRunId, resultsRoot, runFileName } from "./location.js";

export interface RunRecord {
  kind: "bench-run";
  schema: number;
  runId: string;
  package: string;
  /** The script as given to bench-run, relative to the package. */
  script: string;
  exitCode: number | null;
  signal: string | null;
  seconds: number;
  startedAt: string;
}

export interface BenchRunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Runs one script; the default runs `node SCRIPT` with the terminal attached. */
  execute?: (script: string, env: NodeJS.ProcessEnv, cwd: string) => { status: number | null; signal: string | null };
}

const runWithNode = (script: string, env: NodeJS.ProcessEnv, cwd: string) => {
  const r = spawnSync(process.execPath, [script], { cwd, env, stdio: "inherit" });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal };
};

export function packageNameAt(dir: string): string {
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string };
  if (!pkg.name) throw new Error(`bench-run: ${join(dir, "package.json")} has no name`);
  return pkg.name;
}

/** Returns the exit status for the whole list: 0 when every script exited 0. */
export function runBenchScripts(scripts: readonly string[], options: BenchRunOptions = {}): number {
  const cwd = options.cwd ?? process.cwd();
  const baseEnv = options.env ?? process.env;
  const execute = options.execute ?? runWithNode;
  if (scripts.length === 0) throw new Error("bench-run: no bench scripts given");
  // Fix the run id here so the scripts' results and these records land in one folder.
  const runId = currentRunId(baseEnv);
  const pkg = packageNameAt(cwd);
  const dir = join(resultsRoot(baseEnv, cwd), runId);
  let status = 0;
  for (const script of scripts) {
    const startedAt = new Date();
    const t0 = process.hrtime.bigint();
    const r = execute(script, { ...baseEnv, BENCH_RUN_ID: runId, BENCH_PACKAGE: pkg, BENCH_SCRIPT: script }, cwd);
    const record: RunRecord = {
      kind: "bench-run",
      schema: 1,
      runId,
      package: pkg,
      script,
      exitCode: r.status,
      signal: r.signal,
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
      startedAt: startedAt.toISOString(),
    };
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, runFileName(pkg, script)), `${JSON.stringify(record, null, 2)}\n`);
    if (r.status !== 0) status = 1;
  }
  return status;
}
