// Benches call recordBench (or recordSkip) once at their end; the rest serves the bins and their tests.
export { evaluateFigure, goalMet, ratioOf, type Figure, type FigureInput, type Goal, type GoalTarget, type Reference } from "./figure.js";
export { recordBench, recordSkip, RESULT_SCHEMA, type BenchInput, type BenchResult, type Recorded, type RecordOptions } from "./record.js";
export { hostFacts, type HostFacts } from "./host.js";
export { currentRunId, fileSlug, repositoryRoot, resultFileName, resultsRoot, runFileName, SUMMARY_FILE, timestampRunId } from "./location.js";
export { runBenchScripts, type BenchRunOptions, type RunRecord } from "./bench-run.js";
export { latestRun, readRun, runDir, workspaceBenchPackages, type BenchPackage, type RunFiles } from "./read-run.js";
export { buildSummary, renderSummary, type BenchState, type BenchStatus, type Summary, type SummaryFigure, type SummaryOptions } from "./summary.js";
export { compareFigures, renderComparison, type FigureChange } from "./compare.js";
export { formatGoal, formatNumber, formatPercentChange, formatRatio, renderTable } from "./format.js";
export { benchRunMain, compareMain, summaryMain, type CliContext } from "./cli.js";
