// Guest-driven virtio-rng throughput: a freestanding guest driver (bench/guest/virtio-rng-bench.c) runs under the
// real Machine with the VirtioRng device and keeps 1 or 32 requests of 64 bytes or 4 KiB in flight on its queue,
// polling the used ring and never reading the bytes (every guest instruction is emulated on this project's hosts,
// so the VMM writes them). The host times each case from the guest's "start" line to its "done" line (both written
// synchronously from the vCPU's exits). Each case runs on both data planes in alternating rounds: `main` (the
// queue served on the JS thread: every doorbell leaves KVM_RUN) and `worker` as `vmm run` assembles it (a
// data-plane thread woken by the kernel through the doorbell's KVM ioeventfd; the vCPU never leaves KVM_RUN for a
// request). The yardstick is the host's own randomFillSync of the same size, as many times, in the same run. At
// queue depth 1 the worker plane also runs timed: the guest reports the TSC ticks it spent waiting for the device,
// from which the time outside the guest per request is derived. Run after a build:
// `pnpm --filter @vmm/device-virtio bench`.
import "reflect-metadata";
import { randomFillSync } from "node:crypto";
import { recordBench } from "@vmm/bench-kit";
import { VirtioRng } from "../dist/index.js";
import { buildBenchGuest, exitUnlessKvm, outsideMicros, runGuestCase } from "./guest-case.mjs";

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const CASES = [
  { name: "64 B QD1", block: 64, depth: 1, requests: 2000 },
  { name: "64 B QD32", block: 64, depth: 32, requests: 20000 },
  { name: "4 KiB QD1", block: 4096, depth: 1, requests: 2000 },
  { name: "4 KiB QD32", block: 4096, depth: 32, requests: 20000 },
].map((c) => ({ ...c, requests: Math.max(c.depth, Math.round(c.requests * SCALE)) }));
/** Alternating rounds per case and plane (the median counts); one when the bench is scaled down. */
const ROUNDS = SCALE < 1 ? 1 : 5;
const PLANES = ["main", "worker"];
const TITLE = "virtio-rng driven by a guest (polled used ring): the JS thread beside the data-plane worker and host randomFillSync";

exitUnlessKvm({ name: "guest-rng", title: TITLE, what: "virtio-rng" });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The host's own rate: seconds for `requests` fills of one `block`-byte buffer (synchronous, so the depth does not
 * apply), timed after as many untimed ones (the first calls of a run are several times slower).
 */
function hostFills({ block, requests }) {
  const buffer = new Uint8Array(block);
  const fill = () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < requests; i++) randomFillSync(buffer);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  fill();
  return fill();
}

/** Boots the guest driver for one case on `plane`: the host time from "start" to "done" (timed: and the time outside the guest per request). */
async function guestFills(elf, plane, { block, depth, requests }, timed = false) {
  const g = await runGuestCase(elf, `${block} ${depth} ${requests}${timed ? " t" : ""}`, { name: "virtio-rng0", device: new VirtioRng({ dataplane: plane }) });
  const onWorker = g.fn.transport.dataPlane(0)?.stats.completed ?? 0;
  // The guest's warm-up request before "ready" is the worker's too.
  if (onWorker !== (plane === "worker" ? requests + 1 : 0)) throw new Error(`${plane}: the worker served ${onWorker} of ${requests} requests`);
  const [full, short] = g.done;
  if (full !== requests || short !== 0) throw new Error(`${plane}: ${full} full and ${short} short answers of ${requests}`);
  return { seconds: g.seconds, outsideUs: timed ? outsideMicros(g, requests) : NaN };
}

const elf = await buildBenchGuest("virtio-rng-bench");
const mbps = (rate, block) => ((rate * block) / 1e6).toFixed(block < 1024 ? 2 : 1);
const rows = [];
const figures = [];
for (const c of CASES) {
  const hostRate = c.requests / hostFills(c);
  const rates = { main: [], worker: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const plane of PLANES) rates[plane].push(c.requests / (await guestFills(elf, plane, c)).seconds);
  }
  const rate = { main: median(rates.main), worker: median(rates.worker) };
  const row = { case: c.name, requests: c.requests, "host req/s": Math.round(hostRate), "host MB/s": mbps(hostRate, c.block) };
  for (const plane of PLANES) {
    row[`${plane} req/s`] = Math.round(rate[plane]);
    row[`${plane} MB/s`] = mbps(rate[plane], c.block);
  }
  row["worker/main"] = (rate.worker / rate.main).toFixed(2);
  // A second, timed run at queue depth 1 on the worker (the guest's rdtsc calls slow its own part, so rates come
  // from the untimed runs). Only there: on `main` the JS thread takes the vCPU out of KVM_RUN for each doorbell, at
  // moments the guest cannot tell from its own work.
  const timed = c.depth === 1 ? await guestFills(elf, "worker", c, true) : undefined;
  if (timed) row["worker us outside"] = timed.outsideUs.toFixed(0);
  rows.push(row);
  const host = { name: "host randomFillSync", value: hostRate };
  figures.push(
    // The name without a plane is `vmm run`'s default (the worker as the machine assembles it).
    { metric: `${c.name} guest`, value: rate.worker, unit: "req/s", reference: host },
    { metric: `${c.name} guest (main)`, value: rate.main, unit: "req/s", reference: host },
    {
      metric: `${c.name} guest worker vs main`,
      value: rate.worker,
      unit: "req/s",
      reference: { name: "main (JS thread)", value: rate.main },
      note: `median of ${ROUNDS} alternating round(s) per plane`,
    },
  );
  if (timed) {
    figures.push({
      metric: `${c.name} time outside the guest per request`,
      value: timed.outsideUs,
      unit: "us",
      goal: { direction: "<=", limit: 40, of: "value", source: "issue #17" },
      note: "the guest's TSC share spent polling an unchanged used index, times the host's wall time, per request",
    });
  }
}
console.log(`virtio-rng driven by a guest (polled used ring, bytes never read): the main and worker data planes beside host randomFillSync (${ROUNDS} round(s), median)`);
console.table(rows);
recordBench({ package: "@vmm/device-virtio", name: "guest-rng", title: TITLE, rows: figures });
