import type { GuestMemory, Handle, IoEventRegistry, IoEventRequest, Logger } from "@vmm/core";
import type { DescriptorChain } from "../virtqueue/descriptor-chain.js";

/**
 * How a device hands one of its queues to a data-plane worker: `VirtioDevice.dataPlane(queue)` returns it. The
 * transport then runs the queue's notify, descriptor walk, work and completion on a worker thread of its own
 * (kvmtool's thread per device), whenever guest RAM is memfd-backed; otherwise the queue stays on the JS thread
 * and the device's `notify` serves it as before.
 */
export interface QueueDataPlane {
  /** The worker module: a file URL (or absolute path) of an ES module whose default export is a `QueueWorkerFactory`. */
  readonly module: string | URL;
  /** Handed to the factory as `context.data`; structured-cloneable (numbers, strings, bigints, plain objects, fds as numbers). */
  readonly data?: unknown;
  /**
   * Microseconds the worker keeps looking at the avail ring for new chains after the ring ran dry, before it
   * sleeps on the doorbell eventfd (default 0). Polling saves the thread wake-up (30-35 us on a nested host) when
   * the driver posts again within the window, at the price of a CPU kept busy meanwhile.
   */
  readonly pollMicros?: number;
}

/** What a worker module's factory gets, on the worker thread. */
export interface QueueWorkerContext {
  /** Guest RAM mapped in the worker (the same memfd pages), bounds-checked like the JS thread's. */
  readonly memory: GuestMemory;
  readonly queue: number;
  /** The features the driver accepted (read at each call: a driver renegotiates after a reset). */
  readonly features: bigint;
  /** `QueueDataPlane.data`. */
  readonly data: unknown;
  /** Lines go to the device's logger on the JS thread. */
  readonly logger: Logger;
}

/**
 * The worker side of a data-plane queue: chain-driven (`process`: the driver's chains are requests, virtio-blk,
 * virtio-net's transmit queue) or input-driven (`input`: host input fills the driver's chains, virtio-net's
 * receive queue). A worker has exactly one of the two.
 */
export interface QueueWorker {
  /**
   * Serves one chain synchronously (blocking I/O is fine: the thread is the queue's own) and returns the bytes
   * written into its device-writable buffers; the runtime publishes it in the used ring and interrupts. A
   * GuestMemoryError (a buffer outside RAM) completes the chain with length 0; any other throw (VirtqueueError
   * included) puts the device in DEVICE_NEEDS_RESET, as on the JS thread.
   */
  process?(chain: DescriptorChain): number;
  /** Host input the worker moves into the queue's chains. */
  readonly input?: QueueInput;
}

/**
 * What `QueueInput.fill` reports: `dry` (no input waits: the worker sleeps on the doorbell and the input's fd),
 * `starved` (input waits but the driver posted no room for it: the worker sleeps on the doorbell alone, so the
 * input stays queued at its source), `busy` (a batch was moved and more waits: the runtime signals, looks at its
 * commands and calls again), `ended` (the input will bring nothing more, say its source failed: the worker sleeps on
 * the doorbell alone, with no timeout, until the driver rings or a command comes).
 */
export type QueueInputState = "dry" | "starved" | "busy" | "ended";

/** The queue as an input-driven worker fills it: chains taken in order, given back unused, or published. */
export interface InputRing {
  readonly size: number;
  /** Chains the driver posted and the worker has not taken (throws VirtqueueError for a broken avail index). */
  pending(): number;
  pop(): DescriptorChain | undefined;
  /** Gives back the chain just popped. */
  undoPop(): void;
  /** Publishes a chain with `written` bytes in its device-writable buffers (the runtime interrupts after `fill`). */
  push(head: number, written: number): void;
}

/** Host input (a tap's frames) that an input-driven worker moves into its queue. */
export interface QueueInput {
  /** Readable (or hung up) while input waits: the worker's sleep watches it beside the doorbell. */
  readonly fd: number;
  /**
   * Moves waiting input into `ring`'s chains. GuestMemoryError is the worker's to handle (a buffer outside RAM
   * fails only its chain); any throw puts the device in DEVICE_NEEDS_RESET.
   */
  fill(ring: InputRing): QueueInputState;
  /** The queue goes back to the JS thread (reset, snapshot): input held and not yet placed is dropped or returned. */
  release?(): void;
}

export type QueueWorkerFactory = (context: QueueWorkerContext) => QueueWorker | Promise<QueueWorker>;

/** Types a worker module's default export: `export default defineQueueWorker((ctx) => ({ process(chain) {...} }))`. */
export function defineQueueWorker(factory: QueueWorkerFactory): QueueWorkerFactory {
  return factory;
}

/**
 * An IoEventRegistry that can also register an eventfd its caller owns and waits on itself (a data-plane worker),
 * so a doorbell wakes that thread and nothing on the JS thread. Where the registry lacks it, the doorbell reaches
 * the JS thread as usual and the transport forwards it to the worker.
 */
export interface IoEventFdRegistry extends IoEventRegistry {
  addEventFd(request: IoEventRequest, eventFd: number): Handle;
}

export function hasEventFdRegistration(registry: IoEventRegistry): registry is IoEventFdRegistry {
  return typeof (registry as Partial<IoEventFdRegistry>).addEventFd === "function";
}
