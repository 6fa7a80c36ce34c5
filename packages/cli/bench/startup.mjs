// Start-up of `vmm run` for a raw hello guest as a whole process, beside `node -e 0`, in alternating rounds:
// wall time from spawn to exit and the peak RSS of the finished process (bench/child-usage.py reads the kernel's
// accounting of its child). Issue #17's goals: at most 150 ms and 55 MiB, and at most 1.7x `node -e 0`.
// Two floors run the same guest in the same rounds, so that the figures say what is vmm's own: startup-floor.c,
// the least a VMM in C does for it (kvmtool is not installed here), and startup-floor-node.mjs, the same work
// from Node through @vmm/kvm-native with no cli, machine or devices.
// Run after a build: pnpm --filter @vmm/cli bench (BENCH_SCALE scales the rounds, default 9).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
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
const GREETING = "Hello from guest-kit";
const commands = {
  vmm: [process.execPath, join(here, "..", "bin", "vmm.js"), "run", "-k", image],
  node: [process.execPath, "-e", "0"],
  nodeFloor: [process.execPath, join(here, "startup-floor-node.mjs"), image],
};
const scratch = mkdtempSync(join(tmpdir(), "vmm-startup-bench-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));
try {
  const exe = join(scratch, "startup-floor");
  execFileSync("gcc", ["-O2", "-Wall", "-o", exe, join(here, "startup-floor.c")], { stdio: "inherit" });
  commands.cFloor = [exe, image];
} catch (error) {
  console.log(`cli start-up bench: the C floor is SKIPPED (gcc could not build bench/startup-floor.c: ${error.message})`);
}

function measure(argv) {
  const usage = JSON.parse(execFileSync("python3", [join(here, "child-usage.py"), ...argv], { encoding: "utf8" }));
  if (usage.status !== 0) throw new Error(`${argv.slice(1).join(" ")} exited ${usage.status}: ${usage.stderr}`);
  return usage;
}

// Each VM must really have run the guest: its greeting on stdout. This also warms the page cache and the image.
for (const [name, argv] of Object.entries(commands)) {
  const out = execFileSync(argv[0], argv.slice(1), { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (name !== "node" && !out.includes(GREETING)) throw new Error(`${name} did not run the guest (stdout: ${JSON.stringify(out.slice(0, 200))})`);
}
const names = Object.keys(commands);
const runs = Object.fromEntries(names.map((name) => [name, []]));
for (let i = 0; i < ROUNDS; i++) for (const name of names) runs[name].push(measure(commands[name]));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const wall = (name) => median(runs[name].map((r) => r.wallMs));
const peak = (name) => median(runs[name].map((r) => r.peakKiB / 1024));
const [vmmWall, nodeWall, vmmPeak, nodePeak] = [wall("vmm"), wall("node"), peak("vmm"), peak("node")];
const nodeFloorWall = wall("nodeFloor");
const line = (label, name) => console.log(`${label.padEnd(38)} ${wall(name).toFixed(1).padStart(6)} ms  ${peak(name).toFixed(1).padStart(5)} MiB peak  ${(wall(name) / nodeWall).toFixed(2)}x node -e 0`);
console.log(`medians of ${ROUNDS} alternating rounds, each process from spawn to exit:`);
line("vmm run (raw hello guest)", "vmm");
line("node -e 0", "node");
line("Node floor (kvm-native, no vmm)", "nodeFloor");
if (runs.cFloor) line("C floor (startup-floor.c)", "cFloor");
console.log(`vmm run beyond the Node floor          ${(vmmWall - nodeFloorWall).toFixed(1).padStart(6)} ms`);

const node = (value) => ({ name: "node -e 0", value });
const floorNote = "the same guest, same RAM, irqchip, PIT and CPUID, run to its debug exit; medians of the same alternating rounds";
recordBench({
  package: "@vmm/cli",
  name: "startup",
  title: `${TITLE} (medians of ${ROUNDS} alternating rounds)`,
  rows: [
    { metric: "vmm run: spawn to exit", value: vmmWall, unit: "ms", reference: node(nodeWall), goal: { direction: "<=", limit: 150, of: "value", source: GOAL } },
    { metric: "vmm run: spawn to exit, vs node -e 0", value: vmmWall, unit: "ms", reference: node(nodeWall), goal: { direction: "<=", limit: 1.7, of: "ratio", source: GOAL } },
    { metric: "vmm run: peak RSS", value: vmmPeak, unit: "MiB", reference: node(nodePeak), goal: { direction: "<=", limit: 55, of: "value", source: GOAL } },
    { metric: "Node floor: spawn to exit, vs node -e 0", value: nodeFloorWall, unit: "ms", reference: node(nodeWall), note: `startup-floor-node.mjs: ${floorNote}` },
    { metric: "vmm run: spawn to exit, vs the Node floor", value: vmmWall, unit: "ms", reference: { name: "Node floor", value: nodeFloorWall }, note: "what the cli, the machine and its devices add to the least a Node VMM pays" },
    ...(runs.cFloor
      ? [{ metric: "C floor: spawn to exit", value: wall("cFloor"), unit: "ms", reference: node(nodeWall), note: `startup-floor.c: ${floorNote}` }]
      : []),
  ],
});
