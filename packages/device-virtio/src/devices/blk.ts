import { GuestMemoryError, SnapshotError } from "@vmm/core";
import { bit, VirtioType } from "../constants.js";
import { type VirtioContext, VirtioDevice } from "../device.js";
import type { BlockBackend } from "../backends/block.js";
import type { QueueDataPlane } from "../dataplane/api.js";
import { builtModule } from "../dataplane/module-url.js";
import { type DescriptorChain, gather, scatter, type ChainSegment } from "../virtqueue/descriptor-chain.js";
import { BlkStatus, HEADER, ID_BYTES, MAX_ZERO_SECTORS, MAX_ZERO_SEGMENTS, idBytes, parseBlkRequest, SECTOR, statusSegments } from "./blk-request.js";
import type { BlkWorkerData } from "./blk-worker.js";

export { BlkStatus, BlkType, SECTOR } from "./blk-request.js";

/** virtio-blk feature bits (virtio 1.x, 5.2.3). */
export const BlkFeature = { SIZE_MAX: 1, SEG_MAX: 2, RO: 5, BLK_SIZE: 6, FLUSH: 9, DISCARD: 13, WRITE_ZEROES: 14 } as const;

const QUEUE_SIZE = 256;
/** Largest single segment and number of data segments the device advertises. */
const SIZE_MAX = 64 * 1024;
const SEG_MAX = QUEUE_SIZE - 2;
/** Bytes of bounce buffers in flight before the device stops taking new requests until some complete. */
const INFLIGHT_BUDGET = 64 * 1024 * 1024;
/** Zeros are written from this one shared (never modified) buffer, so many requests cost no extra memory. */
const ZEROS = new Uint8Array(1024 * 1024);

export interface BlkOptions {
  /** Up to 20 bytes returned by GET_ID. */
  serial?: string;
  /** Advertise VIRTIO_BLK_F_RO even if the backend is writable. */
  readonly?: boolean;
  /**
   * Where requests run: `worker` (default) on a data-plane thread of the queue's own with synchronous I/O
   * straight into guest memory, when the backend has a file descriptor (`FileImage`) and guest RAM is
   * memfd-backed; `main` (or a host that allows no worker) on the JS thread through the backend's promises.
   */
  dataplane?: "worker" | "main";
  /** With the worker: microseconds it polls the ring for the next request before sleeping (`QueueDataPlane.pollMicros`; default 0). */
  pollMicros?: number;
}

/**
 * virtio-blk (virtio 1.x, 5.2) over a BlockBackend. Requests run asynchronously and complete in the order the
 * I/O finishes; data goes through bounce buffers so a request that completes after a reset never touches guest
 * RAM. Every request is checked: sectors past the end, misaligned lengths, wrong buffer directions and writes to
 * a read-only disk complete with IOERR; unknown types with UNSUPP.
 */
export class VirtioBlk extends VirtioDevice {
  readonly type = VirtioType.BLOCK;
  readonly queueSizes = [QUEUE_SIZE];
  readonly features: bigint;
  readonly config = new Uint8Array(60);
  override readonly maxChainBytes = HEADER + SEG_MAX * SIZE_MAX + 1;
  readonly capacity: bigint;
  readonly readonly: boolean;
  private readonly serial: Uint8Array;
  private readonly dataplaneKind: "worker" | "main";
  private readonly pollMicros: number;
  private inflight = 0;
  private inflightBytes = 0;
  private signalPending = false;
  /** `quiesce` callers waiting for no I/O in flight and no interrupt pending. */
  private idleWaiters: Array<() => void> = [];

  constructor(
    readonly backend: BlockBackend,
    options: BlkOptions = {},
  ) {
    super();
    this.readonly = options.readonly === true || backend.readonly;
    this.capacity = BigInt(Math.floor(backend.size / SECTOR));
    this.features =
      bit(BlkFeature.SIZE_MAX) |
      bit(BlkFeature.SEG_MAX) |
      bit(BlkFeature.BLK_SIZE) |
      bit(BlkFeature.FLUSH) |
      (this.readonly ? bit(BlkFeature.RO) : bit(BlkFeature.DISCARD) | bit(BlkFeature.WRITE_ZEROES));
    const v = new DataView(this.config.buffer);
    v.setBigUint64(0, this.capacity, true);
    v.setUint32(8, SIZE_MAX, true);
    v.setUint32(12, SEG_MAX, true);
    v.setUint32(20, SECTOR, true);
    v.setUint32(36, MAX_ZERO_SECTORS, true); // max_discard_sectors
    v.setUint32(40, MAX_ZERO_SEGMENTS, true); // max_discard_seg
    v.setUint32(44, 1, true); // discard_sector_alignment
    v.setUint32(48, MAX_ZERO_SECTORS, true); // max_write_zeroes_sectors
    v.setUint32(52, MAX_ZERO_SEGMENTS, true); // max_write_zeroes_seg
    this.serial = new TextEncoder().encode(options.serial ?? "").subarray(0, ID_BYTES);
    this.dataplaneKind = options.dataplane ?? "worker";
    this.pollMicros = options.pollMicros ?? 0;
  }

  /** The queue goes to a worker (blk-worker.ts) when asked for and the backend is a file with a descriptor. */
  override dataPlane(_queue: number): QueueDataPlane | undefined {
    const fd = this.backend.fd;
    if (this.dataplaneKind !== "worker" || fd === undefined) return undefined;
    const data: BlkWorkerData = { fd, capacity: this.capacity, readonly: this.readonly, serial: this.serial };
    return { module: builtModule("devices/blk-worker.js"), data, pollMicros: this.pollMicros };
  }

  /** Requests whose I/O has not finished. */
  get pendingRequests(): number {
    return this.inflight;
  }

  notify(_queue: number): void {
    const ctx = this.context;
    if (!ctx) return;
    const q = ctx.queue(0);
    try {
      // Stop taking requests while too many bytes are in flight; a completion resumes.
      while (ctx.active && ctx.busMaster && this.inflightBytes < INFLIGHT_BUDGET) {
        const chain = q.pop();
        if (!chain) break;
        const used = this.start(chain);
        if (used !== undefined) q.push(chain.head, used);
      }
    } catch (e) {
      ctx.fail(e);
      return;
    }
    ctx.signal(0);
  }

  protected override stopped(): void {
    this.inflightBytes = 0;
  }

  /**
   * Waits until every request submitted to the backend has finished and been published (data, status byte,
   * used ring) with its interrupt. The transport keeps new requests out meanwhile; a request the budget held
   * back stays in the ring for after the snapshot.
   */
  override quiesce(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Nothing beyond the transport: the disk's content is the image, not state. Refuses with I/O in flight. */
  override saveState(what: string): undefined {
    if (this.inflight > 0) throw new SnapshotError(`${what}: ${this.inflight} requests in flight (quiesce first)`);
    return undefined;
  }

  private get idle(): boolean {
    return this.inflight === 0 && !this.signalPending;
  }

  private checkIdle(): void {
    if (this.idle) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  override async close(): Promise<void> {
    await this.backend.close();
  }

  /** Starts one request; returns the used length when it completed at once, undefined when I/O is running. */
  private start(chain: DescriptorChain): number | undefined {
    const ctx = this.context!;
    const statusAt = statusSegments(chain);
    if (!statusAt) {
      ctx.logger.warn("virtio-blk: request without a status byte");
      return 0;
    }
    const request = parseBlkRequest(ctx.memory, chain, this);
    switch (request.kind) {
      case "done":
        if (request.why) ctx.logger.debug(`virtio-blk: ${request.why}`);
        return this.finish(chain, statusAt, request.status, 0, request.error);
      case "read": {
        const buffer = new Uint8Array(request.length);
        return this.async(
          chain,
          statusAt,
          request.length,
          () => this.backend.read(buffer, request.position),
          () => scatter(ctx.memory, request.data, 0, buffer),
        );
      }
      case "write": {
        const buffer = new Uint8Array(request.length);
        try {
          gather(ctx.memory, request.data, 0, buffer);
        } catch (e) {
          return this.finish(chain, statusAt, BlkStatus.IOERR, 0, e);
        }
        return this.async(chain, statusAt, request.length, () => this.backend.write(buffer, request.position));
      }
      case "flush":
        return this.async(chain, statusAt, 0, () => this.backend.flush());
      case "get-id":
        try {
          return this.finish(chain, statusAt, BlkStatus.OK, scatter(ctx.memory, request.data, 0, idBytes(this.serial, request.length)));
        } catch (e) {
          return this.finish(chain, statusAt, BlkStatus.IOERR, 0, e);
        }
      case "zero":
        return this.async(chain, statusAt, 0, async () => {
          for (let at = request.start; at < request.end && ctx.active; at += ZEROS.length) {
            await this.backend.write(ZEROS.subarray(0, Math.min(ZEROS.length, request.end - at)), at);
          }
        });
    }
  }

  /**
   * Runs `io`, then completes the chain if the device was not reset meanwhile: `publish` copies the data into the
   * guest's buffers (returning the bytes written), then the status byte and the used ring. All of that touches
   * guest memory, so it waits while PCI Bus Master Enable is clear.
   */
  private async(chain: DescriptorChain, statusAt: ChainSegment[], bytes: number, io: () => Promise<void>, publish: () => number = () => 0): undefined {
    const ctx = this.context!;
    this.inflight++;
    this.inflightBytes += bytes;
    const done = (status: number, error?: unknown) => {
      this.inflight--;
      ctx.whenBusMaster(() => this.complete(ctx, chain, statusAt, bytes, status, publish, error));
      this.checkIdle();
    };
    io().then(
      () => done(BlkStatus.OK),
      (e: unknown) => done(BlkStatus.IOERR, e),
    );
    return undefined;
  }

  private complete(ctx: VirtioContext, chain: DescriptorChain, statusAt: ChainSegment[], bytes: number, status: number, publish: () => number, error: unknown): void {
    if (!ctx.active) return;
    const wasOverBudget = this.inflightBytes >= INFLIGHT_BUDGET;
    this.inflightBytes -= bytes;
    let written = 0;
    if (status === BlkStatus.OK) {
      try {
        written = publish();
      } catch (e) {
        [status, error] = [BlkStatus.IOERR, e];
      }
    }
    const used = this.finish(chain, statusAt, status, written, error);
    ctx.queue(0).push(chain.head, used);
    this.signalSoon(ctx);
    if (wasOverBudget && this.inflightBytes < INFLIGHT_BUDGET) this.notify(0); // take what waited for budget
  }

  /**
   * Completions that land in the same event-loop turn share one interrupt: the signal waits for the check phase,
   * after every I/O callback of this poll phase ran.
   */
  private signalSoon(ctx: VirtioContext): void {
    if (this.signalPending) return;
    this.signalPending = true;
    setImmediate(() => {
      this.signalPending = false;
      ctx.signal(0);
      this.checkIdle();
    });
  }

  /** Writes the status byte; returns the used length (data written plus the status byte). */
  private finish(chain: DescriptorChain, statusAt: ChainSegment[], status: number, written: number, error?: unknown): number {
    const ctx = this.context!;
    if (error !== undefined) {
      // A guest buffer outside RAM is the guest's fault; anything else is a host I/O error. Both end as IOERR.
      if (error instanceof GuestMemoryError) ctx.logger.warn(`virtio-blk: request ${chain.head}: ${error.message}`);
      else ctx.logger.error(`virtio-blk: I/O error: ${error instanceof Error ? error.message : String(error)}`);
      if (status === BlkStatus.OK) status = BlkStatus.IOERR;
    }
    try {
      scatter(ctx.memory, statusAt, 0, Uint8Array.of(status));
    } catch {
      ctx.logger.warn(`virtio-blk: request ${chain.head}: status byte outside guest RAM`);
      return 0;
    }
    return (status === BlkStatus.OK ? written : 0) + 1;
  }
}
