// Text for figures and tables: three significant digits below 100, whole numbers with thousands separators above.
import type { Figure, Goal } from "./figure.js";

export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString("en-US");
  if (x === 0) return "0";
  // toPrecision without exponent notation: 0.000123 stays readable as "0.000123".
  const digits = Math.max(0, 2 - Math.floor(Math.log10(Math.abs(x))));
  return x.toFixed(Math.min(digits, 20));
}

export const formatRatio = (ratio: number): string => `${formatNumber(ratio)}x`;

export const formatValue = (value: number, unit: string): string => `${formatNumber(value)} ${unit}`;

export function formatGoal(goal: Goal, unit: string): string {
  return goal.of === "ratio" ? `${goal.direction} ${formatRatio(goal.limit)}` : `${goal.direction} ${formatValue(goal.limit, unit)}`;
}

export function formatMet(figure: Figure): string {
  if (!figure.goal) return "";
  if (figure.met === undefined) return "n/a";
  return figure.met ? "yes" : "NO";
}

export function formatPercentChange(before: number, after: number): string {
  if (before === 0) return after === 0 ? "0%" : "n/a";
  const change = ((after - before) / Math.abs(before)) * 100;
  return `${change >= 0 ? "+" : ""}${change.toFixed(1)}%`;
}

/** A Markdown table (readable as plain text too): text columns left-aligned, the rest right-aligned. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[], leftColumns = 2): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `| ${widths.map((w, i) => (i < leftColumns ? (cells[i] ?? "").padEnd(w) : (cells[i] ?? "").padStart(w))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i < leftColumns ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...rows.map(line)].join("\n");
}
