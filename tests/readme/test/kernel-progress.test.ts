/**
 * The README announces a wait on a machine's first `pnpm test`: the Linux test kernel's build. What that build
 * prints while the reader waits is tests/linux's BuildProgress: one line every 30 s (a timer, so a silent final
 * link still reports), counting make's compile lines against a full build's, with an estimate of the time left.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { BuildProgress, formatDuration } from "@vmm/linux-tests/dist/build-progress.js";
import { FIRST_BUILD_DURATION } from "@vmm/linux-tests/dist/kernel.js";

const root = resolve(fileURLToPath(import.meta.url), "../../../..");

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** make's quiet output for `n` objects under `dir`, with the steps that are not compiles between them. */
function makeOutput(n: number, dir: string): string[] {
  return Array.from({ length: n }, (_, i) => [`  CC      ${dir}/f${i}.o`, ...(i % 10 === 9 ? [`  AR      ${dir}/built-in.a`] : [])]).flat();
}

it("reports every 30 s, also while make prints nothing, with the time left once a tenth is compiled", () => {
  const said: string[] = [];
  const progress = new BuildProgress((line) => said.push(line), { expectedObjects: 1_200 });
  for (const line of ["  HOSTCC  scripts/basic/fixdep", "  SYNC    include/config/auto.conf", ...makeOutput(60, "kernel")]) progress.line(line);
  vi.advanceTimersByTime(29_999);
  expect(said).toEqual([]);
  vi.advanceTimersByTime(1);
  expect(said).toEqual(["60 of about 1,200 objects compiled (5%), 30 s so far; last: AR kernel/built-in.a"]);

  for (const line of makeOutput(240, "mm")) progress.line(line);
  progress.line("  AS      arch/x86/entry/entry_64.o");
  vi.advanceTimersByTime(30_000);
  // 301 of 1,200 in 60 s: about 179 s for the other 899.
  expect(said[1]).toBe("301 of about 1,200 objects compiled (25%), 1 min 00 s so far, about 2 min 59 s left; last: AS arch/x86/entry/entry_64.o");

  progress.line("  LD      vmlinux.o");
  vi.advanceTimersByTime(30_000); // the link: nothing compiled, still a line
  expect(said[2]).toBe("301 of about 1,200 objects compiled (25%), 1 min 30 s so far, about 4 min 29 s left; last: LD vmlinux.o");
  expect(progress.compiled).toBe(301);

  progress.stop();
  vi.advanceTimersByTime(120_000);
  expect(said).toHaveLength(3);
});

it("counts without a total for an incremental build, and never past 100% or a negative time left", () => {
  const said: string[] = [];
  const incremental = new BuildProgress((line) => said.push(line), { everyMs: 10_000 });
  for (const line of makeOutput(3, "drivers/net")) incremental.line(line);
  vi.advanceTimersByTime(10_000);
  expect(said).toEqual(["3 objects compiled, 10 s so far; last: CC drivers/net/f2.o"]);
  incremental.stop();

  const over = new BuildProgress(() => {}, { expectedObjects: 10 });
  for (const line of makeOutput(12, "lib")) over.line(line);
  expect(over.status()).toBe("12 of about 10 objects compiled (100%), 0 s so far; last: CC lib/f11.o");
  over.stop();
});

it("says durations in minutes and seconds", () => {
  expect([formatDuration(0), formatDuration(59_400), formatDuration(61_000), formatDuration(1_020_000)]).toEqual(["0 s", "59 s", "1 min 01 s", "17 min 00 s"]);
});

it("the root README announces the first build's time as the build itself does", () => {
  expect(readFileSync(join(root, "README.md"), "utf8").replace(/\s+/g, " ")).toContain(`builds their kernel, ${FIRST_BUILD_DURATION}`);
});
