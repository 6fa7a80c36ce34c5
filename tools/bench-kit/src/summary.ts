// One table of every figure of a run, the status and run time of every bench, and what went wrong.
import type { Figure } from "./figure.js";
import { formatGoal, formatMet, formatRatio, formatValue, renderTable } from "./format.js";
import type { HostFacts } from "./host.js";
import type { RunFiles } from "./read-run.js";
import type { BenchResult } from "./record.js";

export type BenchState = "ok" | "skipped" | "failed" | "no result" | "not run";

export interface BenchStatus {
  package: string;
  /** The script bench-run started; absent for a result recorded without bench-run. */
  script?: string;
  /** The names of the benches it recorded. */
  names: string[];
  state: BenchState;
  detail?: string;
  seconds?: number;
  figures: number;
}

export interface SummaryFigure extends Figure {
  package: string;
  bench: string;
}

export interface Summary {
  kind: "bench-summary";
  schema: number;
  runId: string;
  host?: HostFacts;
  /** False when a bench failed, recorded nothing, or did not run, or the bench task runner failed. */
  ok: boolean;
  problems: string[];
  benches: BenchStatus[];
  figures: SummaryFigure[];
}

export interface SummaryOptions {
  /** Packages that have a bench script: each must have run (the root `pnpm bench` passes the workspace's). */
  expectedPackages?: readonly string[];
  /** The exit status of the bench task runner (turbo); non-zero makes the summary fail. */
  runnerStatus?: number;
}

const shortName = (pkg: string): string => pkg.replace(/^@vmm\//, "");
const STATES_THAT_FAIL: readonly BenchState[] = ["failed", "no result", "not run"];

function stateOfResults(results: readonly BenchResult[]): Pick<BenchStatus, "state" | "detail"> {
  const skipped = results.filter((r) => r.skipped);
  if (skipped.length === results.length) return { state: "skipped", detail: skipped.map((r) => r.skipped).join("; ") };
  return { state: "ok" };
}

export function buildSummary(run: RunFiles, options: SummaryOptions = {}): Summary {
  const benches: BenchStatus[] = [];
  const claimed = new Set<BenchResult>();
  for (const record of run.runs) {
    const results = run.results.filter((r) => r.package === record.package && r.script === record.script);
    results.forEach((r) => claimed.add(r));
    const base = {
      package: record.package,
      script: record.script,
      names: results.map((r) => r.name),
      seconds: record.seconds,
      figures: results.reduce((n, r) => n + r.figures.length, 0),
    };
    if (record.exitCode !== 0) {
      const how = record.signal ? `killed by ${record.signal}` : `exit status ${record.exitCode}`;
      benches.push({ ...base, state: "failed", detail: how });
    } else if (results.length === 0) {
      benches.push({ ...base, state: "no result", detail: "exited 0 without recording a result" });
    } else {
      benches.push({ ...base, ...stateOfResults(results) });
    }
  }
  // Results recorded by a bench started without bench-run (by hand, with BENCH_RUN_ID set).
  for (const r of run.results.filter((x) => !claimed.has(x))) {
    benches.push({ package: r.package, names: [r.name], figures: r.figures.length, ...stateOfResults([r]) });
  }
  for (const pkg of options.expectedPackages ?? []) {
    if (benches.some((b) => b.package === pkg)) continue;
    benches.push({ package: pkg, names: [], figures: 0, state: "not run", detail: "its bench script started no bench; a build or compile step may have failed" });
  }
  const problems = benches
    .filter((b) => STATES_THAT_FAIL.includes(b.state))
    .map((b) => `${b.package}${b.script ? ` ${b.script}` : ""}: ${b.state} (${b.detail})`);
  if (options.runnerStatus) problems.push(`the bench task runner exited with status ${options.runnerStatus}`);
  const figures = run.results.flatMap((r) => r.figures.map((f) => ({ package: r.package, bench: r.name, ...f })));
  const summary: Summary = { kind: "bench-summary", schema: 1, runId: run.runId, ok: problems.length === 0, problems, benches, figures };
  const host = run.results[0]?.host;
  if (host) summary.host = host;
  return summary;
}

export function describeHost(host: HostFacts | undefined): string {
  if (!host) return "no host facts (no bench recorded a result)";
  const commit = host.gitCommit ? `${host.gitCommit.slice(0, 10)}${host.gitDirty ? " (dirty tree)" : ""}` : "no git commit";
  return `${commit}; ${host.cpuModel}, ${host.cores} cores; Linux ${host.kernel}; node ${host.node}`;
}

export function figureCells(f: SummaryFigure): string[] {
  return [
    `${shortName(f.package)} ${f.bench}`,
    f.metric,
    formatValue(f.value, f.unit),
    f.reference ? `${f.reference.name}: ${formatValue(f.reference.value, f.unit)}` : "",
    f.ratio === undefined ? "" : formatRatio(f.ratio),
    f.goal ? formatGoal(f.goal, f.unit) : "",
    formatMet(f),
  ];
}

/** One line per bench and note: a note several figures share is printed once, naming them. */
function noteLines(figures: readonly SummaryFigure[]): string[] {
  const byNote = new Map<string, string[]>();
  for (const f of figures) {
    if (!f.note) continue;
    const key = `${shortName(f.package)} ${f.bench}\u0000${f.note}`;
    byNote.set(key, [...(byNote.get(key) ?? []), f.metric]);
  }
  return [...byNote].map(([key, metrics]) => {
    const [bench, note] = key.split("\u0000");
    return `- ${bench}, ${metrics.join("; ")}: ${note}`;
  });
}

export function renderSummary(summary: Summary): string {
  const out: string[] = [`Bench run ${summary.runId}: ${describeHost(summary.host)}`, ""];
  if (summary.figures.length) {
    out.push(renderTable(["bench", "metric", "ours", "reference", "ratio", "goal", "met"], summary.figures.map(figureCells)));
    const goals = summary.figures.filter((f) => f.goal);
    const met = goals.filter((f) => f.met === true).length;
    const missed = goals.filter((f) => f.met === false).length;
    const unjudged = goals.length - met - missed;
    const verdicts = goals.length ? `Goals: ${met} met, ${missed} not met${unjudged ? `, ${unjudged} not judged` : ""}.` : "No goals.";
    out.push("", `ratio = ours / reference. ${verdicts}`);
    const notes = noteLines(summary.figures);
    if (notes.length) out.push("", "Notes:", ...notes);
  } else {
    out.push("No figures recorded.");
  }
  out.push(
    "",
    renderTable(
      ["bench", "script", "state", "time", "figures"],
      summary.benches.map((b) => [
        `${shortName(b.package)}${b.names.length ? ` ${b.names.join(", ")}` : ""}`,
        b.script ?? "",
        b.detail ? `${b.state}: ${b.detail}` : b.state,
        b.seconds === undefined ? "" : `${b.seconds.toFixed(1)} s`,
        String(b.figures),
      ]),
      3,
    ),
  );
  if (summary.problems.length) out.push("", "Problems (these make the exit status 1):", ...summary.problems.map((p) => `- ${p}`));
  return out.join("\n");
}
