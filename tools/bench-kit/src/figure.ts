// One measured figure of a bench: our value, optionally beside a reference (the yardstick it is judged against)
// and a goal. The ratio is always ours / reference, so "<= 1.10x" reads "at most 10% over the reference".

/** What a goal bounds: the ratio to the reference, or the value itself (in the figure's unit). */
export type GoalTarget = "ratio" | "value";

export interface Goal {
  direction: "<=" | ">=";
  limit: number;
  of: GoalTarget;
  /** Where the goal comes from, e.g. "issue #17". */
  source?: string;
}

export interface Reference {
  /** What we are compared with: "C floor", "kvmtool", "node -e 0", "QEMU", ... */
  name: string;
  value: number;
}

/** A figure as a bench states it. */
export interface FigureInput {
  metric: string;
  value: number;
  unit: string;
  reference?: Reference;
  goal?: Goal;
  /** One short line a reader of the summary needs (how the reference was obtained, what the goal covers). */
  note?: string;
}

/** A figure with what follows from it: the ratio, and whether the goal is met. */
export interface Figure extends FigureInput {
  /** value / reference.value; absent without a reference or when the reference is not positive. */
  ratio?: number;
  /** Absent without a goal, or when a ratio goal has no ratio to judge. */
  met?: boolean;
}

export function ratioOf(value: number, reference: Reference | undefined): number | undefined {
  // A ratio to zero or to a negative yardstick says nothing.
  if (!reference || !(reference.value > 0)) return undefined;
  return value / reference.value;
}

export function goalMet(goal: Goal, figure: { value: number; ratio?: number }): boolean | undefined {
  const x = goal.of === "ratio" ? figure.ratio : figure.value;
  if (x === undefined) return undefined;
  return goal.direction === "<=" ? x <= goal.limit : x >= goal.limit;
}

function check(ok: boolean, metric: string, what: string): void {
  if (!ok) throw new Error(`bench figure "${metric}": ${what}`);
}

/** Validates a figure (a bench that records garbage should fail loudly, not compare garbage) and completes it. */
export function evaluateFigure(input: FigureInput): Figure {
  const { metric } = input;
  check(typeof metric === "string" && metric.length > 0, String(metric), "needs a metric name");
  check(Number.isFinite(input.value), metric, `value ${input.value} is not a finite number`);
  check(typeof input.unit === "string" && input.unit.length > 0, metric, "needs a unit");
  if (input.reference) {
    check(input.reference.name.length > 0, metric, "reference needs a name");
    check(Number.isFinite(input.reference.value), metric, `reference value ${input.reference.value} is not a finite number`);
  }
  if (input.goal) {
    check(input.goal.direction === "<=" || input.goal.direction === ">=", metric, `goal direction ${input.goal.direction}`);
    check(Number.isFinite(input.goal.limit), metric, `goal limit ${input.goal.limit} is not a finite number`);
    check(input.goal.of === "ratio" || input.goal.of === "value", metric, `goal of ${input.goal.of}`);
    check(input.goal.of === "value" || input.reference !== undefined, metric, "a ratio goal needs a reference");
  }
  const ratio = ratioOf(input.value, input.reference);
  const figure: Figure = { ...input };
  if (ratio !== undefined) figure.ratio = ratio;
  const met = input.goal && goalMet(input.goal, figure);
  if (met !== undefined) figure.met = met;
  return figure;
}
