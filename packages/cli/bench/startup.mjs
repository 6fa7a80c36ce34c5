// Start-up of `vmm run` for a raw hello guest as a whole process, beside `node -e 0`, in alternating rounds:
// wall time from spawn to exit and the peak RSS of the finished process (bench/child-usage.py reads the kernel's
// accounting of its child). Issue #17's goals: at most 150 ms and 55 MiB, and at most 1.7x `node -e 0`.
// Run after a build: pnpm --filter @vmm/cli bench (BENCH_SCALE scales the rounds, default 9).
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { recordBench, recordSkip } from "@vmm/bench-kit";
import { buildGuest } from "@vmm/guest-kit";
import { kvmAvailability } from "@vmm/kvm-native";

const here = dirname(fileURLToPath(import.meta.url));
const TITLE = "start-up of vmm run for a raw hello guest, a whole process, beside node -e 0";
const ROUNDS = Math.max(3, Math.round(9 * Number(process.env.BENCH_SCALE ?? 1)));
const GOAL = "issue #17";

const skip = (reason) => {
  console.log(`cli start-up bench SKIPPED: ${reason}`);
  recordSkip({ package: "@vmm/cli", name: "startup", title: TITLE, reason });
  process.exit(0);
};
const kvm = kvmAvailability();
if (!kvm.ok) skip(kvm.reason);
try {
  execFileSync("python3", ["-c", "import resource"], { stdio: "ignore" });
} catch {
  skip("python3 is not installed (bench/child-usage.py measures each process's peak RSS)");
}

const image = await buildGuest("hello", { format: "raw" });
const commands = {
  vmm: [process.execPath, join(here, "..", "bin", "vmm.js"), "run", "-k", image],
  node: [process.execPath, "-e", "0"],
};

function measure(argv) {
  const usage = JSON.parse(execFileSync("python3", [join(here, "child-usage.py"), ...argv], { encoding: "utf8" }));
  if (usage.status !== 0) throw new Error(`${argv.slice(1).join(" ")} exited ${usage.status}: ${usage.stderr}`);
  return usage;
}

measure(commands.vmm); // warm the page cache and the guest image
measure(commands.node);
const runs = { vmm: [], node: [] };
for (let i = 0; i < ROUNDS; i++) for (const name of ["vmm", "node"]) runs[name].push(measure(commands[name]));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const wall = (name) => median(runs[name].map((r) => r.wallMs));
const peak = (name) => median(runs[name].map((r) => r.peakKiB / 1024));
const [vmmWall, nodeWall, vmmPeak, nodePeak] = [wall("vmm"), wall("node"), peak("vmm"), peak("node")];
console.log(`vmm run (raw hello guest)  ${vmmWall.toFixed(1)} ms  ${vmmPeak.toFixed(1)} MiB peak   (medians of ${ROUNDS} rounds)`);
console.log(`node -e 0                  ${nodeWall.toFixed(1)} ms  ${nodePeak.toFixed(1)} MiB peak`);
console.log(`ratio                      ${(vmmWall / nodeWall).toFixed(2)}x wall, ${(vmmPeak / nodePeak).toFixed(2)}x peak`);

const node = (value) => ({ name: "node -e 0", value });
recordBench({
  package: "@vmm/cli",
  name: "startup",
  title: `${TITLE} (medians of ${ROUNDS} alternating rounds)`,
  rows: [
    { metric: "vmm run: spawn to exit", value: vmmWall, unit: "ms", reference: node(nodeWall), goal: { direction: "<=", limit: 150, of: "value", source: GOAL } },
    { metric: "vmm run: spawn to exit, vs node -e 0", value: vmmWall, unit: "ms", reference: node(nodeWall), goal: { direction: "<=", limit: 1.7, of: "ratio", source: GOAL } },
    { metric: "vmm run: peak RSS", value: vmmPeak, unit: "MiB", reference: node(nodePeak), goal: { direction: "<=", limit: 55, of: "value", source: GOAL } },
  ],
});
