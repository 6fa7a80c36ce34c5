import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runBenchScripts } from "../src/bench-run.js";
import { compareMain, summaryMain } from "../src/cli.js";
import { compareFigures } from "../src/compare.js";
import { readRun, workspaceBenchPackages } from "../src/read-run.js";
import { recordBench, recordSkip } from "../src/record.js";
import { buildSummary, renderSummary, type Summary } from "../src/summary.js";

let dir: string;
let results: string;
const quiet = () => undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bench-kit-run-"));
  results = join(dir, "results");
  mkdirSync(join(dir, "pkg"));
  writeFileSync(join(dir, "pkg", "package.json"), JSON.stringify({ name: "@vmm/pkg", scripts: { bench: "bench-run a.mjs" } }));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const exitCost = (value: number) => ({
  package: "@vmm/pkg",
  name: "exit-cost",
  title: "exit cost",
  rows: [
    { metric: "pio exit", value, unit: "ns/exit", reference: { name: "C floor", value: 1000 }, goal: { direction: "<=" as const, limit: 1.1, of: "ratio" as const } },
    { metric: "startup", value: 390, unit: "ms", goal: { direction: "<=" as const, limit: 150, of: "value" as const }, note: "in-process Machine" },
  ],
});

/** A run as `pnpm bench` makes one: bench-run starts each script, and the scripts record (here in-process). */
function fakeRun(runId: string, behaviour: Record<string, (env: NodeJS.ProcessEnv) => number>): number {
  return runBenchScripts(Object.keys(behaviour), {
    cwd: join(dir, "pkg"),
    env: { BENCH_RESULTS_DIR: results, BENCH_RUN_ID: runId },
    execute: (script, env) => ({ status: behaviour[script]!(env), signal: null }),
  });
}

describe("bench-run and the summary", () => {
  it("records each script's status and time, runs the later ones after a failure, and names what has no result", () => {
    const status = fakeRun("r1", {
      "ok.mjs": (env) => (recordBench(exitCost(1050), { env, cwd: dir, log: quiet }), 0),
      "crash.mjs": () => 3,
      "silent.mjs": () => 0,
      "skip.mjs": (env) => (recordSkip({ package: "@vmm/pkg", name: "guest", title: "t", reason: "no /dev/kvm" }, { env, cwd: dir, log: quiet }), 0),
    });
    expect(status).toBe(1);
    const run = readRun(join(results, "r1"));
    expect(run.runs.map((r) => [r.script, r.exitCode])).toEqual([["ok.mjs", 0], ["crash.mjs", 3], ["silent.mjs", 0], ["skip.mjs", 0]]);
    expect(run.runs.every((r) => r.package === "@vmm/pkg" && r.seconds >= 0)).toBe(true);

    const summary = buildSummary(run, { expectedPackages: ["@vmm/pkg", "@vmm/never"], runnerStatus: 1 });
    expect(summary.ok).toBe(false);
    expect(summary.benches.map((b) => [b.package, b.script, b.state, b.figures])).toEqual([
      ["@vmm/pkg", "ok.mjs", "ok", 2],
      ["@vmm/pkg", "crash.mjs", "failed", 0],
      ["@vmm/pkg", "silent.mjs", "no result", 0],
      ["@vmm/pkg", "skip.mjs", "skipped", 0],
      ["@vmm/never", undefined, "not run", 0],
    ]);
    expect(summary.problems).toEqual([
      "@vmm/pkg crash.mjs: failed (exit status 3)",
      "@vmm/pkg silent.mjs: no result (exited 0 without recording a result)",
      "@vmm/never: not run (its bench script started no bench; a build or compile step may have failed)",
      "the bench task runner exited with status 1",
    ]);

    const text = renderSummary(summary);
    expect(text).toMatch(/\| pkg exit-cost \| pio exit \| 1,050 ns\/exit \| C floor: 1,000 ns\/exit \| 1.05x \| +<= 1.10x \| yes \|/);
    expect(text).toMatch(/\| pkg exit-cost \| startup +\| +390 ms \| +\| +\| +<= 150 ms \| +NO \|/);
    expect(text).toContain("Goals: 1 met, 1 not met.");
    expect(text).toContain("- pkg exit-cost, startup: in-process Machine");
    const shared = buildSummary({
      ...run,
      results: run.results.map((r) => ({ ...r, figures: r.figures.map((f) => ({ ...f, note: "same" })) })),
    });
    expect(renderSummary(shared)).toContain("- pkg exit-cost, pio exit; startup: same\n");
    expect(text).toMatch(/\| pkg exit-cost +\| ok.mjs +\| ok +\| +\d+\.\d s \| +2 \|/);
    expect(text).toMatch(/\| pkg guest +\| skip.mjs +\| skipped: no \/dev\/kvm +\|/);
    expect(text).toContain("- @vmm/pkg crash.mjs: failed (exit status 3)");
  });

  it("summarises a clean run as ok", () => {
    expect(fakeRun("r2", { "ok.mjs": (env) => (recordBench(exitCost(1200), { env, cwd: dir, log: quiet }), 0) })).toBe(0);
    const summary = buildSummary(readRun(join(results, "r2")), { expectedPackages: ["@vmm/pkg"], runnerStatus: 0 });
    expect(summary.ok).toBe(true);
    expect(summary.host?.node).toBe(process.version);
    expect(renderSummary(summary)).not.toContain("Problems");
  });

  it("runs real scripts with node, passing the run id and script name", () => {
    writeFileSync(join(dir, "pkg", "a.mjs"), "import { writeFileSync } from 'node:fs'; writeFileSync('env.txt', process.env.BENCH_RUN_ID + ' ' + process.env.BENCH_SCRIPT);");
    writeFileSync(join(dir, "pkg", "b.mjs"), "process.exit(5)");
    const status = runBenchScripts(["b.mjs", "a.mjs"], { cwd: join(dir, "pkg"), env: { ...process.env, BENCH_RESULTS_DIR: results, BENCH_RUN_ID: "real" } });
    expect(status).toBe(1);
    expect(readFileSync(join(dir, "pkg", "env.txt"), "utf8")).toBe("real a.mjs");
    expect(readRun(join(results, "real")).runs.map((r) => r.exitCode)).toEqual([5, 0]);
  });

  it("bench-summary writes summary.json, prints the table, and exits 1 for a failed run", () => {
    fakeRun("r3", { "ok.mjs": (env) => (recordBench(exitCost(1050), { env, cwd: dir, log: quiet }), 0), "x.mjs": () => 1 });
    const out: string[] = [];
    const status = summaryMain(["r3", "--runner-status", "1"], { env: { BENCH_RESULTS_DIR: results }, cwd: dir, log: (t) => void out.push(t) });
    expect(status).toBe(1);
    const written = JSON.parse(readFileSync(join(results, "r3", "summary.json"), "utf8")) as Summary;
    expect(written).toMatchObject({ kind: "bench-summary", runId: "r3", ok: false });
    expect(written.figures.map((f) => f.metric)).toEqual(["pio exit", "startup"]);
    expect(out.join("\n")).toContain("| pkg exit-cost | pio exit |");
    // A summary of the summary's own folder ignores summary.json.
    expect(summaryMain([join(results, "r3")], { env: { BENCH_RESULTS_DIR: results }, cwd: dir, log: quiet })).toBe(1);
  });

  it("bench-summary of a run where nothing recorded says so and fails", () => {
    const out: string[] = [];
    expect(summaryMain(["--runner-status", "2"], { env: { BENCH_RESULTS_DIR: results, BENCH_RUN_ID: "empty" }, cwd: dir, log: (t) => void out.push(t) })).toBe(1);
    expect(out.join("\n")).toContain("No figures recorded.");
    expect(out.join("\n")).toContain("the bench task runner exited with status 2");
    expect(summaryMain(["--bogus"], { env: { BENCH_RESULTS_DIR: results }, cwd: dir, log: (t) => void out.push(t) })).toBe(2);
    expect(out.at(-1)).toMatch(/unexpected argument --bogus\nusage: bench-summary/);
  });

  it("finds the workspace packages that have a bench script", () => {
    writeFileSync(join(dir, "pnpm-workspace.yaml"), 'packages:\n  - "pkg"\n  - tools/*\nonlyBuiltDependencies:\n  - "x"\n');
    mkdirSync(join(dir, "tools", "nobench"), { recursive: true });
    writeFileSync(join(dir, "tools", "nobench", "package.json"), JSON.stringify({ name: "@vmm/nobench", scripts: { test: "x" } }));
    expect(workspaceBenchPackages(dir).map((p) => p.name)).toEqual(["@vmm/pkg"]);
  });
});

describe("bench-compare", () => {
  it("prints the change of each figure, better or worse by its goal, and figures only one run has", () => {
    fakeRun("a", { "ok.mjs": (env) => (recordBench(exitCost(1200), { env, cwd: dir, log: quiet }), 0) });
    fakeRun("b", {
      "ok.mjs": (env) => (recordBench({ ...exitCost(1050), rows: [exitCost(1050).rows[0]!, { metric: "new one", value: 1, unit: "ms" }] }, { env, cwd: dir, log: quiet }), 0),
    });
    const out: string[] = [];
    expect(compareMain(["a", "b"], { env: { BENCH_RESULTS_DIR: results }, cwd: dir, log: (t) => void out.push(t) })).toBe(0);
    const text = out.join("\n");
    expect(text).toContain("Compared: a (A) -> b (B)");
    expect(text).toMatch(/\| pkg exit-cost \| pio exit +\| +1,200 ns\/exit \| +1,050 ns\/exit \| +-12.5% \| +1.20x \| +1.05x \| +NO -> yes \| +better \|/);
    expect(text).toMatch(/\| pkg exit-cost \| new one +\| +\(absent\) \| +1.00 ms \|/);
    expect(text).toMatch(/\| pkg exit-cost \| startup +\| +390 ms \| +\(absent\) \|/);
    expect(compareMain(["a"], { env: { BENCH_RESULTS_DIR: results }, cwd: dir, log: (t) => void out.push(t) })).toBe(2);
  });

  it("matches figures by package, bench and metric", () => {
    const f = (pkg: string, bench: string, metric: string, value: number) => ({ package: pkg, bench, metric, value, unit: "ms" });
    const changes = compareFigures([f("p", "b", "m", 1), f("p", "c", "m", 2)], [f("p", "c", "m", 3), f("q", "b", "m", 4)]);
    expect(changes.map((c) => [c.before?.value, c.after?.value])).toEqual([[2, 3], [undefined, 4], [1, undefined]]);
  });
});
