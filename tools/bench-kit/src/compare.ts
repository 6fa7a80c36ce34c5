// The change of every figure between two runs, matched by package, bench and metric.
import { formatMet, formatPercentChange, formatRatio, formatValue, renderTable } from "./format.js";
import type { Summary, SummaryFigure } from "./summary.js";

export interface FigureChange {
  key: string;
  before?: SummaryFigure;
  after?: SummaryFigure;
}

const keyOf = (f: SummaryFigure): string => `${f.package}\u0000${f.bench}\u0000${f.metric}`;

/** Every figure of either run, in the order of `after` then the ones only `before` has. */
export function compareFigures(before: readonly SummaryFigure[], after: readonly SummaryFigure[]): FigureChange[] {
  const old = new Map(before.map((f) => [keyOf(f), f]));
  const changes: FigureChange[] = after.map((f) => ({ key: keyOf(f), after: f, ...(old.has(keyOf(f)) ? { before: old.get(keyOf(f))! } : {}) }));
  const seen = new Set(after.map(keyOf));
  for (const f of before) if (!seen.has(keyOf(f))) changes.push({ key: keyOf(f), before: f });
  return changes;
}

/** "better"/"worse" only where a goal says which way is better; the figures themselves do not. */
function verdict(before: SummaryFigure, after: SummaryFigure): string {
  const goal = after.goal ?? before.goal;
  if (!goal) return "";
  const x = (f: SummaryFigure) => (goal.of === "ratio" ? f.ratio : f.value);
  const [a, b] = [x(before), x(after)];
  if (a === undefined || b === undefined || a === b) return "";
  return (goal.direction === "<=") === b < a ? "better" : "worse";
}

export function renderComparison(before: Summary, after: Summary): string {
  const rows = compareFigures(before.figures, after.figures).map(({ before: a, after: b }) => {
    const f = (b ?? a)!;
    const sameUnit = a && b && a.unit === b.unit;
    return [
      `${f.package.replace(/^@vmm\//, "")} ${f.bench}`,
      f.metric,
      a ? formatValue(a.value, a.unit) : "(absent)",
      b ? formatValue(b.value, b.unit) : "(absent)",
      sameUnit ? formatPercentChange(a.value, b.value) : "",
      a?.ratio !== undefined ? formatRatio(a.ratio) : "",
      b?.ratio !== undefined ? formatRatio(b.ratio) : "",
      a && b && (a.goal || b.goal) ? `${formatMet(a) || "-"} -> ${formatMet(b) || "-"}` : "",
      a && b ? verdict(a, b) : "",
    ];
  });
  return [
    `Compared: ${before.runId} (A) -> ${after.runId} (B)`,
    "",
    renderTable(["bench", "metric", "A", "B", "change", "ratio A", "ratio B", "goal met", "verdict"], rows),
  ].join("\n");
}
