import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { currentRunId, fileSlug, repositoryRoot, timestampRunId } from "../src/location.js";
import { recordBench, recordSkip, type BenchResult } from "../src/record.js";

function gitHead(cwd: string): string | undefined {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
}

let dir: string;
const lines: string[] = [];
const log = (l: string) => void lines.push(l);
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bench-kit-"));
  lines.length = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const bench = {
  package: "@vmm/kvm-native",
  name: "exit-cost",
  title: "ns per exit",
  rows: [
    { metric: "pio exit (wall)", value: 1150, unit: "ns/exit", reference: { name: "C floor", value: 1000 }, goal: { direction: "<=" as const, limit: 1.1, of: "ratio" as const } },
    { metric: "storm p99 lateness", value: 2.5, unit: "ms" },
  ],
};

describe("recordBench", () => {
  it("writes <package>--<name>.json under the run id with figures and host facts", () => {
    const env = { BENCH_RESULTS_DIR: join(dir, "results"), BENCH_RUN_ID: "run-1", BENCH_SCRIPT: "build/bench/exit-bench.js" };
    const { path, result } = recordBench(bench, { env, cwd: dir, log, now: new Date("2025-03-01T10:00:00.123Z") });
    expect(path).toBe(join(dir, "results", "run-1", "vmm-kvm-native--exit-cost.json"));
    const written = JSON.parse(readFileSync(path, "utf8")) as BenchResult;
    expect(written).toEqual(result);
    expect(written).toMatchObject({ kind: "bench-result", runId: "run-1", package: "@vmm/kvm-native", name: "exit-cost", script: "build/bench/exit-bench.js", recordedAt: "2025-03-01T10:00:00.123Z" });
    expect(written.figures[0]).toMatchObject({ ratio: 1.15, met: false });
    expect(written.figures[1]).toEqual({ metric: "storm p99 lateness", value: 2.5, unit: "ms" });
    expect(written.host.cores).toBeGreaterThan(0);
    expect(written.host.node).toBe(process.version);
    expect(written.host.kernel.length).toBeGreaterThan(0);
    expect(lines).toEqual([`bench-kit: recorded 2 figures in ${join("results", "run-1", "vmm-kvm-native--exit-cost.json")}`]);
  });

  it("names the git commit and whether the tree is dirty inside a repository, and neither outside one", () => {
    // The project's work tree is a repository unless it was copied without .git; a temp dir is outside any.
    const head = gitHead(process.cwd());
    if (head === undefined) console.warn("SKIP bench-kit: the work tree is not a git repository; only the outside case is checked");
    else {
      const inside = recordBench(bench, { env: { BENCH_RESULTS_DIR: dir, BENCH_RUN_ID: "a" }, cwd: process.cwd(), log });
      expect(inside.result.host.gitCommit).toMatch(/^[0-9a-f]{40}$/); // HEAD may move meanwhile: others commit
      expect(typeof inside.result.host.gitDirty).toBe("boolean");
    }
    const outside = recordBench(bench, { env: { BENCH_RESULTS_DIR: dir, BENCH_RUN_ID: "b" }, cwd: dir, log });
    expect(outside.result.host.gitCommit).toBeUndefined();
  });

  it("uses a timestamp run id without BENCH_RUN_ID and refuses unsafe ones", () => {
    const now = new Date("2025-03-01T10:00:00.123Z");
    expect(timestampRunId(now)).toBe("2025-03-01T10-00-00Z");
    const { path } = recordBench(bench, { env: { BENCH_RESULTS_DIR: dir }, cwd: dir, log, now });
    expect(path).toBe(join(dir, "2025-03-01T10-00-00Z", "vmm-kvm-native--exit-cost.json"));
    expect(() => currentRunId({ BENCH_RUN_ID: "../x" })).toThrow(/BENCH_RUN_ID/);
  });

  it("defaults to bench/results at the repository root", () => {
    writeFileSync(join(dir, "pnpm-workspace.yaml"), "packages: []\n");
    const pkgDir = join(dir, "packages", "p");
    expect(repositoryRoot(pkgDir)).toBe(dir);
    const { path } = recordBench(bench, { env: { BENCH_RUN_ID: "r" }, cwd: pkgDir, log });
    expect(path).toBe(join(dir, "bench", "results", "r", "vmm-kvm-native--exit-cost.json"));
  });

  it("refuses a bench without figures, with a metric twice, or with a bad figure, and writes nothing", () => {
    const env = { BENCH_RESULTS_DIR: dir, BENCH_RUN_ID: "x" };
    expect(() => recordBench({ ...bench, rows: [] }, { env, cwd: dir, log })).toThrow(/no figures/);
    expect(() => recordBench({ ...bench, rows: [bench.rows[1]!, bench.rows[1]!] }, { env, cwd: dir, log })).toThrow(/twice/);
    expect(() => recordBench({ ...bench, rows: [{ metric: "m", value: Number.NaN, unit: "ms" }] }, { env, cwd: dir, log })).toThrow(/NaN/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("records a skip with its reason and no figures", () => {
    const { result } = recordSkip({ package: "@vmm/machine", name: "startup", title: "t", reason: "no /dev/kvm" }, { env: { BENCH_RESULTS_DIR: dir, BENCH_RUN_ID: "s" }, cwd: dir, log });
    expect(result).toMatchObject({ skipped: "no /dev/kvm", figures: [] });
    expect(lines.at(-1)).toContain("recorded skip (no /dev/kvm)");
  });

  it("makes file names from package names", () => {
    expect(fileSlug("@vmm/device-virtio")).toBe("vmm-device-virtio");
    expect(fileSlug("rand 4 KiB")).toBe("rand-4-KiB");
  });
});

describe("recordBench under bench-run", () => {
  it("refuses a package name other than the one bench-run runs it in (its result would be orphaned)", () => {
    const env = { BENCH_RESULTS_DIR: dir, BENCH_RUN_ID: "p", BENCH_PACKAGE: "@vmm/machine" };
    expect(() => recordBench(bench, { env, cwd: dir, log })).toThrow(/package "@vmm\/kvm-native", but bench-run runs it in @vmm\/machine/);
    expect(recordBench({ ...bench, package: "@vmm/machine" }, { env, cwd: dir, log }).result.package).toBe("@vmm/machine");
  });
});
