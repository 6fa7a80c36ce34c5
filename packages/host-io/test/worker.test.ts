import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../src/native.js";

// The addon is context-aware: a worker loads its own instance. A watch left open when the worker is terminated
// is closed by the environment's cleanup hook (no abort, no leaked handle keeping the worker's loop alive).
// The worker uses the raw native calls because it cannot load the TypeScript sources.
const WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const native = require(require.resolve("node-gyp-build", { paths: [workerData.root] }))(workerData.root);
const fd = native.eventfdCreate();
new native.EventFdPoll(fd, (n) => parentPort.postMessage({ count: Number(n) }));
new native.ReadablePoll(native.eventfdCreate(), () => {});
native.eventfdWrite(fd, 3);
`;

describe("watches in a worker thread", () => {
  it("deliver in the worker and are torn down with it", async () => {
    const w = new Worker(WORKER, { eval: true, workerData: { root: packageRoot } });
    const msg = await new Promise<{ count?: number }>((resolve, reject) => {
      w.once("message", resolve);
      w.once("error", reject);
    });
    expect(msg.count).toBe(3);
    expect(await w.terminate()).toBe(1);
  });
});
