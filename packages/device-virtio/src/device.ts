import { type DeviceState, type GuestMemory, GuestMemoryError, type Logger, SnapshotError } from "@vmm/core";
import type { VirtioDeviceTypeId } from "./constants.js";
import type { QueueDataPlane } from "./dataplane/api.js";
import type { DescriptorChain } from "./virtqueue/descriptor-chain.js";
import type { SplitQueue } from "./virtqueue/split-ring.js";

/** What a running device model gets from its transport once the driver set DRIVER_OK. */
export interface VirtioContext {
  readonly memory: GuestMemory;
  readonly logger: Logger;
  /** The features the driver accepted. */
  readonly features: bigint;
  /** False once the transport was reset (or the device needs a reset): late I/O completions must be dropped. */
  readonly active: boolean;
  /** False while PCI Bus Master Enable is clear: no ring or buffer access until it is set again. */
  readonly busMaster: boolean;
  /** Runs `work` now, or when bus mastering is enabled again; dropped if the device is reset first. */
  whenBusMaster(work: () => void): void;
  queue(index: number): SplitQueue;
  /** Interrupts the driver for used buffers on `queue`, if its suppression state asks for one. */
  signal(queue: number): void;
  /** The driver broke the rules in a way the device cannot recover from: DEVICE_NEEDS_RESET. */
  fail(error: unknown): void;
}

/**
 * A virtio device model, independent of the transport: its type, queues, feature bits and configuration
 * space, and what it does when the driver notifies a queue. The transport owns status, features, queues'
 * layout and interrupts.
 */
export abstract class VirtioDevice {
  abstract readonly type: VirtioDeviceTypeId;
  /** Maximum size of each virtqueue (powers of two). */
  abstract readonly queueSizes: readonly number[];
  /** Device-type feature bits offered (the transport adds VERSION_1 and the ring features). */
  abstract readonly features: bigint;
  /** Device-specific configuration space, little-endian (read by the driver through the transport). */
  abstract readonly config: Uint8Array;
  /** Largest chain the device accepts, in bytes. */
  readonly maxChainBytes: number = 0xffff_ffff;
  /** Set by the transport: tells the driver the configuration space changed. */
  onConfigChange: () => void = () => {};

  protected context: VirtioContext | undefined;

  /** The driver set DRIVER_OK: queues are started and the device may use them. */
  activate(context: VirtioContext): void {
    this.context = context;
    this.started();
  }

  /** Reset or DEVICE_NEEDS_RESET: stop using the queues; in-flight work is dropped when it completes. */
  deactivate(): void {
    this.context = undefined;
    this.stopped();
  }

  /** Bus Master Enable was set again while the device runs: resume work that waited for guest memory. */
  busMasterResumed(): void {
    if (this.context?.active) this.resumed();
  }

  /** The driver made buffers available on `queue`. */
  abstract notify(queue: number): void;

  /**
   * Asks for `queue` to be served on a worker thread of its own (see `QueueDataPlane`), asked once when the
   * transport is built. Where the host allows it (memfd-backed guest RAM), `notify` is then never called for that
   * queue: its worker module serves every chain. Default: none, the queue is served here.
   */
  dataPlane(_queue: number): QueueDataPlane | undefined {
    return undefined;
  }

  /**
   * `queue` is about to go to its data-plane worker: the device still owns the ring during this call (it may
   * place host input it holds) and leaves the queue, and the host input the worker takes over, alone until
   * `queueReturned`. Default: nothing.
   */
  queueLending(_queue: number): void {}

  /** `queue` is the JS thread's again (reset, Bus Master Enable off, a snapshot, or its worker is gone). Default: nothing. */
  queueReturned(_queue: number): void {}

  /** A driver write to the configuration space (most fields are read-only, so the default ignores it). */
  writeConfig(_offset: number, _size: 1 | 2 | 4, _value: number): void {}

  /**
   * Snapshots: completes the work in flight (I/O submitted to the host) and publishes it to the used ring with
   * its interrupt. The transport has stopped serving doorbells and reports `busMaster` false meanwhile, so the
   * device takes no new chains and leaves host input in its backlog. Default: nothing runs asynchronously.
   */
  async quiesce(): Promise<void> {}

  /**
   * Snapshots: the device's own state beyond the transport's (backlogs of host input, say), with its own layout
   * version, or undefined when it has none. Called after `quiesce`; throw SnapshotError (naming `what`) when it
   * cannot be saved.
   */
  saveState(_what: string): DeviceState | undefined {
    return undefined;
  }

  /**
   * Restores what `saveState` returned, before the transport activates the device again (`started` follows for a
   * running device). `what` names the device in errors: check the data as untrusted and throw SnapshotError.
   */
  restoreState(state: DeviceState | undefined, what: string): void {
    if (state !== undefined) throw new SnapshotError(`${what}: the saved state has device state this device does not keep`);
  }

  /**
   * The device's own counters (frames moved and dropped, say), in lowerCamelCase: `vmm run --stats` and `vmm stat`
   * print them beside the transport's. Default: none.
   */
  counters(): Readonly<Record<string, number>> {
    return {};
  }

  /** Releases host resources (files, sockets) when the VM stops. */
  async close(): Promise<void> {}

  protected started(): void {}
  protected stopped(): void {}
  /** Host-side backlogs (received frames, console input) may go to the guest again. */
  protected resumed(): void {}

  /**
   * Runs `work` for each chain available on `queue` (while `more()` holds) and interrupts the driver once at the
   * end. `work` returns the bytes written into the chain, or undefined when it completes the chain later
   * (asynchronous I/O). A buffer outside guest RAM fails only its chain (returned with length 0); a malformed
   * ring puts the device in DEVICE_NEEDS_RESET.
   */
  protected drain(queue: number, work: (chain: DescriptorChain) => number | undefined, more: () => boolean = () => true): void {
    const ctx = this.context;
    if (!ctx) return;
    const q = ctx.queue(queue);
    try {
      while (ctx.active && ctx.busMaster && more()) {
        const chain = q.pop();
        if (!chain) break;
        let written: number | undefined;
        try {
          written = work(chain);
        } catch (e) {
          if (!(e instanceof GuestMemoryError)) throw e;
          ctx.logger.warn(`${this.constructor.name}: queue ${queue} chain ${chain.head}: ${e.message}`);
          written = 0;
        }
        if (written !== undefined) q.push(chain.head, written);
      }
    } catch (e) {
      ctx.fail(e);
      return;
    }
    ctx.signal(queue);
  }
}
