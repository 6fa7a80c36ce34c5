import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { GuestMemory, Logger } from "@vmm/core";
import { bufferAddress, EventFd, hostIoAvailability } from "@vmm/host-io";
import type { QueueOptions, SplitQueue } from "../virtqueue/split-ring.js";
import type { QueueDataPlane } from "./api.js";
import { builtModule } from "./module-url.js";
import { Command, Ctl, RingFlag, Route, type WorkerInit, type WorkerMessage, WorkerState } from "./protocol.js";

/** How long the JS thread waits for a worker to reach a request boundary before it gives up on it. */
const PAUSE_TIMEOUT_MS = 10_000;

/**
 * Guest RAM as a worker sees it: the machine's own mapping of every region (viewed in the worker, so the pages a
 * lazy restore fills through userfaultfd on first touch are filled for the worker too), or undefined unless every
 * region is the machine's memfd-backed mapping (a RAM region with a `file`).
 */
export function workerRam(memory: GuestMemory): WorkerInit["ram"] | undefined {
  const regions = memory.list();
  if (regions.length === 0 || regions.some((r) => r.file === undefined)) return undefined;
  return regions.map((r) => ({ gpa: r.gpa, length: r.bytes.length, address: bufferAddress(r.bytes) }));
}

/** Whether a queue can have a worker on this host with this RAM (memfd-backed RAM and the host-io addon). */
export function dataPlaneUsable(memory: GuestMemory): boolean {
  return hostIoAvailability().ok && workerRam(memory) !== undefined;
}

/**
 * The parent's exec arguments minus the "source" export condition: this workspace's test runner resolves
 * packages to their TypeScript sources with it, which a worker thread cannot load (it runs the build output).
 */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const args = process.execArgv;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if ((a === "--conditions" || a === "-C") && args[i + 1] === "source") i++;
    else if (a !== "--conditions=source" && a !== "-C=source") out.push(a);
  }
  return out;
}

export interface QueueWorkerHostOptions {
  readonly plane: QueueDataPlane;
  readonly name: string;
  readonly queue: number;
  readonly maxSize: number;
  readonly maxChainBytes: number;
  readonly memory: GuestMemory;
  readonly logger: Logger;
  /** The worker handed back a used-buffer interrupt (the vector has no irqfd now): raise it. */
  readonly onSignal: () => void;
  /** The ring is broken or the worker's module failed: the device needs a reset. */
  readonly onFail: (error: Error) => void;
  /** The thread went away while it held the queue: the queue is the JS thread's from now on. */
  readonly onOrphaned?: () => void;
  /**
   * A doorbell for a queue whose worker is gone (it could not start, crashed or hung): the JS thread serves the
   * queue from now on, and the doorbell eventfd (which KVM may signal directly) is watched on the main loop.
   */
  readonly onOrphanDoorbell: () => void;
}

/**
 * The JS thread's side of one data-plane queue: its doorbell eventfd (`kickFd`, which the ioevent registry
 * signals), the worker thread, and the control block through which the queue changes hands. `lend` gives the
 * worker the ring at the SplitQueue's cursors; `reclaim` waits (Atomics.wait) until the worker stands at a
 * request boundary with everything it took completed and published, and copies the cursors back.
 */
export class QueueWorkerHost {
  private readonly kick: EventFd;
  private readonly control = new SharedArrayBuffer(Ctl.WORDS * 4);
  private readonly ctl = new Int32Array(this.control);
  private worker: Worker | undefined;
  private lent = false;
  private dead = false;
  private closed = false;

  constructor(private readonly options: QueueWorkerHostOptions) {
    this.kick = new EventFd();
    this.kick.unref();
    Atomics.store(this.ctl, Ctl.ROUTE, Route.HANDBACK);
  }

  get kickFd(): number {
    return this.kick.fd;
  }

  /** False once the worker thread is gone: the queue is the JS thread's. */
  get alive(): boolean {
    return !this.dead;
  }

  /** Whether the thread was started (by `prepare`, at the driver's ACKNOWLEDGE, or by the first `lend`), or is gone. */
  get started(): boolean {
    return this.worker !== undefined || this.dead;
  }

  /** True while the worker owns the queue. */
  get isLent(): boolean {
    return this.lent;
  }

  /** Requests completed by the worker, interrupts it sent through the irqfd and handed back (tests, traces). */
  get stats(): { completed: number; irqfdSignals: number; handbacks: number } {
    return {
      completed: Atomics.load(this.ctl, Ctl.COMPLETED),
      irqfdSignals: Atomics.load(this.ctl, Ctl.IRQFD_SIGNALS),
      handbacks: Atomics.load(this.ctl, Ctl.HANDBACKS),
    };
  }

  /** A doorbell that reached the JS thread (trapped write, or a registry without eventfd registration). */
  ring(): void {
    if (!this.kick.isClosed) this.kick.write(1);
  }

  /** Hands the queue (started, at its cursors) to the worker, starting the thread the first time. */
  lend(queue: SplitQueue, options: QueueOptions, features: bigint): void {
    if (this.lent || this.dead) return;
    const s = queue.saved();
    const words: [number, number][] = [
      [Ctl.SIZE, s.size],
      [Ctl.DESC_LO, s.desc[0]],
      [Ctl.DESC_HI, s.desc[1]],
      [Ctl.DRIVER_LO, s.driver[0]],
      [Ctl.DRIVER_HI, s.driver[1]],
      [Ctl.DEVICE_LO, s.device[0]],
      [Ctl.DEVICE_HI, s.device[1]],
      [Ctl.NEXT_AVAIL, s.nextAvail],
      [Ctl.USED_IDX, s.usedIdx],
      [Ctl.SIGNALLED_USED, s.signalledUsed],
      [Ctl.RING_FLAGS, (options.eventIdx ? RingFlag.EVENT_IDX : 0) | (options.indirect ? RingFlag.INDIRECT : 0)],
      [Ctl.FEATURES_LO, Number(features & 0xffff_ffffn) | 0],
      [Ctl.FEATURES_HI, Number((features >> 32n) & 0xffff_ffffn) | 0],
    ];
    for (const [i, v] of words) Atomics.store(this.ctl, i, v | 0);
    this.lent = true;
    this.command(Command.RUN);
    this.prepare();
  }

  /** Starts the thread ahead of the first `lend` (it waits for its first command); a gone or closed host starts none. */
  prepare(): void {
    if (!this.dead && !this.closed) this.worker ??= this.spawn();
  }

  /**
   * Takes the queue back: waits until the worker finished the chain it is on and published it, then copies the
   * cursors into `queue`. Returns whether doorbells may be unserved (the caller looks at the ring): ones rung
   * since the worker last looked (consumed here), and always for a lent queue, whose worker reads the doorbell
   * count after a drain and may have read the doorbells of chains it left when the command changed.
   */
  reclaim(queue: SplitQueue): boolean {
    if (!this.lent) return this.takeKicks();
    this.lent = false;
    const seq = this.command(Command.PAUSE);
    this.ring(); // wakes a worker blocked on the doorbell
    this.waitFor(seq);
    queue.setCursors({
      nextAvail: Atomics.load(this.ctl, Ctl.NEXT_AVAIL),
      usedIdx: Atomics.load(this.ctl, Ctl.USED_IDX),
      signalledUsed: Atomics.load(this.ctl, Ctl.SIGNALLED_USED),
    });
    this.takeKicks();
    return true;
  }

  /**
   * Where used-buffer interrupts go from now: an irqfd, `Route.HANDBACK` or `Route.NONE`. Once this returns the
   * worker writes no old irqfd any more (it may be closed or masked next).
   */
  setRoute(route: number): void {
    if (Atomics.exchange(this.ctl, Ctl.ROUTE, route) === route) return;
    while (Atomics.load(this.ctl, Ctl.SIGNALLING) === 1) {
      // the worker is inside one eventfd write: a few microseconds
    }
  }

  /** Ends the thread and closes the doorbell eventfd (the device is closing; the queue was reclaimed). */
  close(): void {
    this.closed = true;
    this.dead = true;
    this.lent = false;
    this.command(Command.EXIT);
    this.ring();
    void this.worker?.terminate();
    this.worker = undefined;
    this.kick.close();
  }

  private takeKicks(): boolean {
    return !this.kick.isClosed && this.kick.read() !== null;
  }

  private command(cmd: number): number {
    Atomics.store(this.ctl, Ctl.CMD, cmd);
    const seq = Atomics.add(this.ctl, Ctl.SEQ, 1) + 1;
    Atomics.notify(this.ctl, Ctl.SEQ);
    return seq;
  }

  /** Blocks until the worker acknowledged command `seq` (it never takes long: one chain's I/O at most). */
  private waitFor(seq: number): void {
    if (!this.worker || this.dead) return;
    const deadline = Date.now() + PAUSE_TIMEOUT_MS;
    for (;;) {
      const ack = Atomics.load(this.ctl, Ctl.ACK);
      if (ack === seq || Atomics.load(this.ctl, Ctl.STATE) === WorkerState.DEAD) return;
      if (Date.now() > deadline) {
        this.options.logger.error(`${this.options.name}: queue ${this.options.queue}'s data-plane worker did not stop within ${PAUSE_TIMEOUT_MS} ms`);
        this.orphan();
        void this.worker.terminate();
        return;
      }
      Atomics.wait(this.ctl, Ctl.ACK, ack, 50);
    }
  }

  private spawn(): Worker {
    const o = this.options;
    const init: WorkerInit = {
      module: o.plane.module instanceof URL ? o.plane.module.href : o.plane.module.startsWith("/") ? pathToFileURL(o.plane.module).href : o.plane.module,
      data: o.plane.data,
      queue: o.queue,
      maxSize: o.maxSize,
      maxChainBytes: o.maxChainBytes,
      name: o.name,
      ram: workerRam(o.memory)!,
      kickFd: this.kick.fd,
      control: this.control,
      pollMicros: Math.max(0, Math.min(o.plane.pollMicros ?? 0, 1_000_000)),
    };
    const worker = new Worker(builtModule("dataplane/worker-entry.js"), { workerData: init, name: `${o.name} queue ${o.queue}`, execArgv: workerExecArgv() });
    worker.unref();
    worker.on("message", (m: WorkerMessage) => this.message(m));
    worker.on("error", (e) => {
      this.orphan();
      o.onFail(e);
    });
    worker.on("exit", () => this.orphan());
    return worker;
  }

  /** The thread is gone (not closed by us): its doorbells come to the JS thread's `notify` from now on. */
  private orphan(): void {
    Atomics.store(this.ctl, Ctl.STATE, WorkerState.DEAD);
    const wasLent = this.lent;
    this.lent = false;
    if (wasLent && !this.closed) this.options.onOrphaned?.();
    if (this.dead) return;
    this.dead = true;
    if (this.closed || this.kick.isClosed) return;
    this.kick.onSignal(() => this.options.onOrphanDoorbell());
    this.kick.unref();
  }

  private message(m: WorkerMessage): void {
    const o = this.options;
    if (m.type === "signal") {
      Atomics.store(this.ctl, Ctl.HANDBACK_PENDING, 0);
      o.onSignal();
    } else if (m.type === "fail") {
      o.onFail(new Error(m.message));
    } else {
      o.logger[m.level](m.message);
    }
  }
}
