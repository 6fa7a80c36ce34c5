// The worker thread of one data-plane queue: views the machine's guest RAM mapping, loads the device's worker module,
// then blocks on the queue's doorbell eventfd, pops chains with the shared SplitQueue code, lets the module serve
// them, publishes the used ring and signals the irqfd. It never throws out of its loop: a broken ring or a module
// error is reported to the JS thread (which puts the device in DEVICE_NEEDS_RESET) and the worker stops touching
// guest memory until it is handed the queue again.
import { readSync, writeSync } from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { GuestMemory, type Logger } from "@vmm/core";
import { viewMapping, waitAnyReadable, waitReadable } from "@vmm/host-io";
import { SplitQueue } from "../virtqueue/split-ring.js";
import type { InputRing, QueueInput, QueueInputState, QueueWorker, QueueWorkerContext, QueueWorkerFactory } from "./api.js";
import { Command, Ctl, RingFlag, Route, type WorkerInit, type WorkerMessage, WorkerState } from "./protocol.js";

const init = workerData as WorkerInit;
const ctl = new Int32Array(init.control);
const post = (m: WorkerMessage) => parentPort!.postMessage(m);
const describe = (e: unknown) => (e instanceof Error ? e.message : String(e));
const logger: Logger = {
  debug: (message) => post({ type: "log", level: "debug", message }),
  info: (message) => post({ type: "log", level: "info", message }),
  warn: (message) => post({ type: "log", level: "warn", message }),
  error: (message) => post({ type: "log", level: "error", message }),
};
/** One eventfd increment, and room for reading the counter. */
const ONE = new BigUint64Array([1n]);
const counter = new BigUint64Array(1);

/**
 * How long a starved input queue sleeps on the doorbell when chains wait that were too small for the input (a
 * frame larger than the posted buffers): the driver's next post rings only when it passes the device's
 * avail_event, so the worker looks again after this long as well.
 */
const STARVED_RECHECK_MS = 1;

/** A chain buffer outside RAM fails only that chain; the module may carry its own copy of @vmm/core. */
const isGuestMemoryError = (e: unknown) => e instanceof Error && e.name === "GuestMemoryError";

function features(): bigint {
  return (BigInt(ctl[Ctl.FEATURES_HI]! >>> 0) << 32n) | BigInt(ctl[Ctl.FEATURES_LO]! >>> 0);
}

function acknowledge(seq: number, state: number): void {
  Atomics.store(ctl, Ctl.STATE, state);
  Atomics.store(ctl, Ctl.ACK, seq);
  Atomics.notify(ctl, Ctl.ACK);
}

/** Takes the ring from the control block (the JS thread wrote its layout and cursors before RUN). */
function takeQueue(queue: SplitQueue): void {
  const word = (i: number) => ctl[i]! >>> 0;
  const flags = ctl[Ctl.RING_FLAGS]!;
  queue.restore({
    size: ctl[Ctl.SIZE]!,
    enabled: true,
    vector: 0,
    desc: [word(Ctl.DESC_LO), word(Ctl.DESC_HI)],
    driver: [word(Ctl.DRIVER_LO), word(Ctl.DRIVER_HI)],
    device: [word(Ctl.DEVICE_LO), word(Ctl.DEVICE_HI)],
    nextAvail: ctl[Ctl.NEXT_AVAIL]!,
    usedIdx: ctl[Ctl.USED_IDX]!,
    signalledUsed: ctl[Ctl.SIGNALLED_USED]!,
  });
  queue.start({ eventIdx: (flags & RingFlag.EVENT_IDX) !== 0, indirect: (flags & RingFlag.INDIRECT) !== 0, maxChainBytes: init.maxChainBytes });
}

/** Gives the cursors back to the JS thread. */
function giveQueue(queue: SplitQueue): void {
  const s = queue.saved();
  Atomics.store(ctl, Ctl.NEXT_AVAIL, s.nextAvail);
  Atomics.store(ctl, Ctl.USED_IDX, s.usedIdx);
  Atomics.store(ctl, Ctl.SIGNALLED_USED, s.signalledUsed);
}

/**
 * A used-buffer interrupt the ring asked for: through the irqfd while the JS thread says the vector is
 * deliverable, else handed back to the JS thread. SIGNALLING brackets the read of ROUTE and the write, so the JS
 * thread, which stores a new route and then waits for SIGNALLING to clear, knows no write to the old irqfd is
 * still to come.
 */
function signal(): void {
  Atomics.store(ctl, Ctl.SIGNALLING, 1);
  const route = Atomics.load(ctl, Ctl.ROUTE);
  let handBack = route === Route.HANDBACK;
  if (route >= 0) {
    try {
      writeSync(route, ONE);
      Atomics.add(ctl, Ctl.IRQFD_SIGNALS, 1);
    } catch {
      handBack = true; // the route went away meanwhile: the JS thread delivers it
    }
  }
  Atomics.store(ctl, Ctl.SIGNALLING, 0);
  if (handBack) {
    Atomics.add(ctl, Ctl.HANDBACKS, 1);
    if (Atomics.exchange(ctl, Ctl.HANDBACK_PENDING, 1) === 0) post({ type: "signal" });
  }
}

/**
 * Consumes the doorbell's count (non-blocking eventfd: EAGAIN when nobody rang). Called after a drain, not
 * before: the read is then off the request's path, and `chainsWaiting` afterwards catches a chain whose doorbell
 * it consumed.
 */
function consumeKick(): void {
  try {
    readSync(init.kickFd, counter);
  } catch {
    // EAGAIN: no doorbell since the last read
  }
}

/**
 * Serves the ring while the command stays `seq`'s: pops, processes, publishes each chain, then signals once.
 * Returns false when the ring is broken or the module threw (reported; the worker then holds the queue still).
 */
function drain(queue: SplitQueue, worker: QueueWorker, seq: number): boolean {
  let pushed = false;
  try {
    while (Atomics.load(ctl, Ctl.SEQ) === seq) {
      const chain = queue.pop();
      if (!chain) break;
      let written: number;
      try {
        written = worker.process!(chain); // a chain-driven worker (load checked)
      } catch (e) {
        if (!isGuestMemoryError(e)) throw e;
        logger.warn(`${init.name}: queue ${init.queue} chain ${chain.head}: ${describe(e)}`);
        written = 0;
      }
      queue.push(chain.head, written);
      Atomics.add(ctl, Ctl.COMPLETED, 1);
      pushed = true;
    }
    if (pushed && queue.shouldInterrupt()) signal();
    return true;
  } catch (e) {
    post({ type: "fail", message: describe(e) });
    return false;
  }
}

/** The queue as `QueueInput.fill` sees it (one view for the worker's life: the size is read at each use); publishing counts the chain. */
function inputRing(queue: SplitQueue): InputRing {
  return {
    get size() {
      return queue.size;
    },
    pending: () => queue.pending(),
    pop: () => queue.pop(),
    undoPop: () => queue.undoPop(),
    push: (head, written) => {
      queue.push(head, written);
      Atomics.add(ctl, Ctl.COMPLETED, 1);
    },
  };
}

/** One `fill` and its interrupt; undefined when the ring is broken or the module threw (reported). */
function fillInput(queue: SplitQueue, ring: InputRing, input: QueueInput): QueueInputState | undefined {
  try {
    const state = input.fill(ring);
    if (queue.shouldInterrupt()) signal();
    return state;
  } catch (e) {
    post({ type: "fail", message: describe(e) });
    return undefined;
  }
}

/**
 * Sleeps until the input-driven queue has something to do: input or a doorbell while it is dry, a doorbell (new
 * chains) while it is starved or its input ended. The doorbell's count is read first, and the ring looked at after
 * that read.
 */
function waitForInput(queue: SplitQueue, input: QueueInput, state: QueueInputState, seq: number): void {
  consumeKick();
  if (state === "busy" || Atomics.load(ctl, Ctl.SEQ) !== seq) return;
  if (state === "dry") {
    waitAnyReadable([init.kickFd, input.fd], -1);
    return;
  }
  if (state === "ended") {
    waitReadable(init.kickFd, -1);
    return;
  }
  let waiting: number;
  try {
    waiting = queue.pending();
  } catch {
    return; // a broken avail index: the next fill reports it
  }
  waitReadable(init.kickFd, waiting > 0 ? STARVED_RECHECK_MS : -1);
}

/** True when chains are available or a new command came: the worker must not sleep. A broken avail index is left for the next drain to report. */
function chainsWaiting(queue: SplitQueue, seq: number): boolean {
  if (Atomics.load(ctl, Ctl.SEQ) !== seq) return true;
  try {
    return queue.pending() > 0;
  } catch {
    return true;
  }
}

/** Looks at the avail ring for up to `pollMicros` before the worker sleeps: true when chains (or a command) arrived meanwhile. */
function pollForChains(queue: SplitQueue, seq: number): boolean {
  const end = performance.now() + init.pollMicros / 1000;
  while (performance.now() < end) if (chainsWaiting(queue, seq)) return true;
  return false;
}

async function load(): Promise<{ queue: SplitQueue; worker: QueueWorker }> {
  const memory = new GuestMemory(init.ram.map((r) => ({ gpa: r.gpa, bytes: viewMapping(r.address, r.length) })));
  const mod = (await import(init.module)) as { default?: unknown };
  if (typeof mod.default !== "function") throw new Error(`${init.module}: the default export is not a queue worker factory`);
  const context: QueueWorkerContext = {
    memory,
    queue: init.queue,
    get features() {
      return features();
    },
    data: init.data,
    logger,
  };
  const worker = await (mod.default as QueueWorkerFactory)(context);
  const chainDriven = typeof worker?.process === "function";
  const inputDriven = typeof worker?.input?.fill === "function" && Number.isInteger(worker.input.fd);
  if (chainDriven === inputDriven) {
    throw new Error(`${init.module}: the factory must return a process(chain) function or an input { fd, fill(ring) }, and not both`);
  }
  return { queue: new SplitQueue(init.queue, init.maxSize, memory), worker };
}

/** Commands until EXIT: RUN serves the queue, PAUSE (or a failure) gives the cursors back and waits. */
function serve(loaded: { queue: SplitQueue; worker: QueueWorker }): void {
  let owned = false;
  let failed = false;
  let ring: InputRing | undefined;
  for (;;) {
    const seq = Atomics.load(ctl, Ctl.SEQ);
    const cmd = Atomics.load(ctl, Ctl.CMD);
    if (cmd === Command.RUN && !failed) {
      if (!owned) {
        try {
          takeQueue(loaded.queue);
          owned = true;
        } catch (e) {
          post({ type: "fail", message: describe(e) });
          failed = true;
          continue;
        }
      }
      if (Atomics.load(ctl, Ctl.ACK) !== seq) acknowledge(seq, WorkerState.RUNNING);
      const input = loaded.worker.input;
      if (input) {
        ring ??= inputRing(loaded.queue);
        const state = fillInput(loaded.queue, ring, input);
        if (state === undefined) failed = true;
        else waitForInput(loaded.queue, input, state, seq);
        continue;
      }
      // Straight from the wake-up to the ring: the doorbell's count is read once the chains are published, and
      // the ring is looked at again after that read, so a chain posted (and rung) meanwhile is not slept on.
      if (!drain(loaded.queue, loaded.worker, seq)) {
        failed = true;
        continue;
      }
      consumeKick();
      if (chainsWaiting(loaded.queue, seq)) continue;
      if (init.pollMicros > 0 && pollForChains(loaded.queue, seq)) continue;
      waitReadable(init.kickFd, -1);
      continue;
    }
    if (owned) {
      giveQueue(loaded.queue);
      owned = false;
      try {
        loaded.worker.input?.release?.();
      } catch (e) {
        logger.warn(`${init.name}: queue ${init.queue}: releasing its input: ${describe(e)}`);
      }
    }
    // A failure stays until the JS thread pauses the queue (its reset path) and hands it over again.
    if (cmd !== Command.RUN) failed = false;
    acknowledge(seq, cmd === Command.EXIT ? WorkerState.DEAD : failed ? WorkerState.FAILED : WorkerState.PAUSED);
    if (cmd === Command.EXIT) return;
    Atomics.wait(ctl, Ctl.SEQ, seq);
  }
}

let loaded: { queue: SplitQueue; worker: QueueWorker } | undefined;
try {
  loaded = await load();
} catch (e) {
  // The thread ends: the JS thread serves the queue from now on (it watches the doorbell eventfd itself).
  post({ type: "fail", message: `${init.name}: data-plane worker for queue ${init.queue} did not start: ${describe(e)}` });
  acknowledge(Atomics.load(ctl, Ctl.SEQ), WorkerState.DEAD);
}
try {
  if (loaded) serve(loaded);
} catch (e) {
  post({ type: "fail", message: `${init.name}: data-plane worker for queue ${init.queue} stopped: ${describe(e)}` });
  acknowledge(Atomics.load(ctl, Ctl.SEQ), WorkerState.DEAD);
}
