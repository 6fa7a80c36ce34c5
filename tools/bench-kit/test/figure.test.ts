import { describe, expect, it } from "vitest";
import { evaluateFigure, goalMet } from "../src/figure.js";
import { formatGoal, formatNumber, formatPercentChange, formatRatio } from "../src/format.js";

describe("evaluateFigure", () => {
  it("computes ours / reference and judges a ratio goal", () => {
    const f = evaluateFigure({
      metric: "pio exit",
      value: 1210,
      unit: "ns/exit",
      reference: { name: "C floor", value: 1000 },
      goal: { direction: "<=", limit: 1.1, of: "ratio" },
    });
    expect(f.ratio).toBeCloseTo(1.21, 10);
    expect(f.met).toBe(false);
    expect(evaluateFigure({ ...f, value: 1100 }).met).toBe(true); // the limit itself is met
  });

  it("judges a value goal without a reference, in both directions", () => {
    expect(evaluateFigure({ metric: "start", value: 149, unit: "ms", goal: { direction: "<=", limit: 150, of: "value" } }).met).toBe(true);
    expect(evaluateFigure({ metric: "start", value: 151, unit: "ms", goal: { direction: "<=", limit: 150, of: "value" } }).met).toBe(false);
    const rate = (value: number) =>
      evaluateFigure({ metric: "req", value, unit: "req/s", reference: { name: "kvmtool", value: 7474 }, goal: { direction: ">=", limit: 1, of: "ratio" } });
    expect(rate(7474).met).toBe(true);
    expect(rate(1913).met).toBe(false);
    expect(rate(1913).ratio).toBeCloseTo(1913 / 7474, 10);
  });

  it("has no ratio and no verdict when the reference is not positive", () => {
    expect(evaluateFigure({ metric: "late", value: 3, unit: "ms", reference: { name: "idle", value: -0.1 } }).ratio).toBeUndefined();
    const f = evaluateFigure({ metric: "late", value: 3, unit: "ms", reference: { name: "idle", value: 0 }, goal: { direction: "<=", limit: 2, of: "ratio" } });
    expect(f.ratio).toBeUndefined();
    expect(f.met).toBeUndefined();
    expect(goalMet({ direction: "<=", limit: 2, of: "ratio" }, { value: 3 })).toBeUndefined();
  });

  it("has neither ratio nor met without reference and goal", () => {
    const f = evaluateFigure({ metric: "rss", value: 62, unit: "MiB" });
    expect(f).toEqual({ metric: "rss", value: 62, unit: "MiB" });
  });

  it("refuses figures that cannot be compared", () => {
    expect(() => evaluateFigure({ metric: "x", value: Number.NaN, unit: "ms" })).toThrow(/"x": value NaN/);
    expect(() => evaluateFigure({ metric: "x", value: 1, unit: "" })).toThrow(/unit/);
    expect(() => evaluateFigure({ metric: "", value: 1, unit: "ms" })).toThrow(/metric name/);
    expect(() => evaluateFigure({ metric: "x", value: 1, unit: "ms", reference: { name: "r", value: Infinity } })).toThrow(/reference value/);
    expect(() => evaluateFigure({ metric: "x", value: 1, unit: "ms", goal: { direction: "<=", limit: 1.1, of: "ratio" } })).toThrow(/ratio goal needs a reference/);
    expect(() => evaluateFigure({ metric: "x", value: 1, unit: "ms", goal: { direction: "<" as "<=", limit: 1, of: "value" } })).toThrow(/direction/);
  });
});

describe("formatting", () => {
  it("prints three significant digits below 100 and whole numbers with separators above", () => {
    expect(formatNumber(7474.4)).toBe("7,474");
    expect(formatNumber(123.6)).toBe("124");
    expect(formatNumber(12.345)).toBe("12.3");
    expect(formatNumber(1.1)).toBe("1.10");
    expect(formatNumber(0.01234)).toBe("0.0123");
    expect(formatNumber(0)).toBe("0");
    expect(formatNumber(-2.5)).toBe("-2.50");
  });

  it("prints goals in the figure's terms", () => {
    expect(formatGoal({ direction: "<=", limit: 1.1, of: "ratio" }, "ns/exit")).toBe("<= 1.10x");
    expect(formatGoal({ direction: ">=", limit: 1, of: "ratio" }, "req/s")).toBe(">= 1.00x");
    expect(formatGoal({ direction: "<=", limit: 150, of: "value" }, "ms")).toBe("<= 150 ms");
    expect(formatRatio(0.2559)).toBe("0.256x");
  });

  it("prints signed percent changes", () => {
    expect(formatPercentChange(100, 110)).toBe("+10.0%");
    expect(formatPercentChange(200, 150)).toBe("-25.0%");
    expect(formatPercentChange(0, 0)).toBe("0%");
    expect(formatPercentChange(0, 5)).toBe("n/a");
  });
});
