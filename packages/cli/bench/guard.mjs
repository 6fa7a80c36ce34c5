// What the cli's device guard (fault isolation, --debug tracing) adds to a BAR access, measured side by side
// with the bare handler in one run. Run after a build: pnpm --filter @vmm/cli bench
import { recordBench } from "@vmm/bench-kit";
import { guardDevice } from "../dist/instrument.js";

const N = 10_000_000;
const device = {
  name: "bench0",
  bars: [{ index: 0, kind: "mem32", size: 16 }],
  configRead: () => 0,
  configWrite() {},
  barHandler: () => ({ read: (offset) => offset, write() {} }),
};
const bare = device.barHandler(0);
const guarded = guardDevice(device, { onFault() {} }).barHandler(0);

function loop(handler, n) {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += handler.read(i & 15, 4);
  return sum;
}
function nsPerAccess(handler) {
  const t = process.hrtime.bigint();
  loop(handler, N);
  return Number(process.hrtime.bigint() - t) / N;
}

loop(bare, N / 10);
loop(guarded, N / 10);
const rounds = [];
for (let r = 0; r < 3; r++) rounds.push([nsPerAccess(bare), nsPerAccess(guarded)]);
const mean = (i) => rounds.reduce((s, x) => s + x[i], 0) / rounds.length;
const [b, g] = [mean(0), mean(1)];
console.log(`bare handler    ${b.toFixed(1)} ns/access`);
console.log(`guarded handler ${g.toFixed(1)} ns/access  (ratio ${(g / b).toFixed(2)}x, +${(g - b).toFixed(1)} ns per access)`);

recordBench({
  package: "@vmm/cli",
  name: "guard",
  title: "what the device guard adds to one BAR access (mean of 3 rounds)",
  rows: [{ metric: "guarded BAR read", value: g, unit: "ns/access", reference: { name: "bare handler", value: b } }],
});
