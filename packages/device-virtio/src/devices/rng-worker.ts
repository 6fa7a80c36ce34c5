// virtio-rng's data-plane worker module: fills each request on the queue's own thread, straight in guest memory,
// with the same rule as the JS thread (rng-fill.ts).
import { defineQueueWorker } from "../dataplane/api.js";
import { fillEntropy } from "./rng-fill.js";

export default defineQueueWorker(({ memory }) => ({ process: (chain) => fillEntropy(memory, chain) }));
