import { decodeBytes, type DeviceState, encodeBytes, SnapshotError, stateData, type StateValue } from "@vmm/core";
import { bit, VirtioType } from "../constants.js";
import { VirtioDevice } from "../device.js";
import type { QueueDataPlane } from "../dataplane/api.js";
import { builtModule } from "../dataplane/module-url.js";
import type { NetBackend } from "../backends/net-socket.js";
import { MAX_FRAME } from "../backends/net-socket.js";
import { gather } from "../virtqueue/descriptor-chain.js";
import { FrameInbox, maxReceiveFrame, mergeableBuffers, netHeaderSize, NetFeature, NetWorkerCounter, placePacket } from "./net-frames.js";
import type { NetWorkerData } from "./net-worker.js";

export { MAX_ETHERNET_FRAME, NetFeature } from "./net-frames.js";
const RX = 0;
const TX = 1;
const LINK_UP = 1;
/** Frames kept while the guest has no receive buffers; more are dropped (counted). */
const RX_BACKLOG = 256;
const NET_STATE_VERSION = 1;

export type Mac = readonly [number, number, number, number, number, number];

/** Parses "52:54:00:12:34:56"; undefined when malformed. */
export function parseMac(text: string): Mac | undefined {
  const m = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text.trim());
  if (!m) return undefined;
  const bytes = m.slice(1).map((h) => parseInt(h, 16));
  return bytes[0]! & 1 ? undefined : (bytes as unknown as Mac); // a multicast address is not a station address
}

export interface NetOptions {
  /**
   * Where the queues run: `worker` (default) on a data-plane thread per queue, reading and writing the backend's
   * frame fd straight between it and guest memory, when the backend has one (a tap) and guest RAM is
   * memfd-backed; `main` (and other backends) on the JS thread.
   */
  dataplane?: "worker" | "main";
}

/**
 * virtio-net (virtio 1.x, 5.1) with one receive and one transmit queue. No offloads are offered, so the
 * virtio_net_hdr is all zeros on receive and ignored on transmit; mergeable receive buffers let a frame span
 * several receive chains.
 */
export class VirtioNet extends VirtioDevice {
  readonly type = VirtioType.NET;
  readonly queueSizes = [256, 256];
  readonly features = bit(NetFeature.MAC) | bit(NetFeature.STATUS) | bit(NetFeature.MRG_RXBUF);
  /** mac[6], status, max_virtqueue_pairs, mtu. */
  readonly config = new Uint8Array(12);
  override readonly maxChainBytes = MAX_FRAME + 64;
  private backlog: Uint8Array[] = [];
  /** Frames dropped: backlog full, too big for the negotiated features or the guest's buffers, or reset. */
  rxDropped = 0;
  /** Of those, frames larger than the negotiated features allow (MAX_ETHERNET_FRAME without guest GSO). */
  rxOversized = 0;
  txFrames = 0;
  /** Frames placed in receive buffers on the JS thread. */
  rxFrames = 0;
  private readonly dataplaneKind: "worker" | "main";
  /** The data-plane workers' NetWorkerCounter words. */
  private readonly workerCounters = new BigInt64Array(new SharedArrayBuffer(NetWorkerCounter.WORDS * 8));
  /** Queues lent to their workers. While the receive queue is, the backend stays paused and the backlog empty. */
  private readonly lent = new Set<number>();
  /** Frames handed to the receive worker with the queue, and back. */
  private readonly inbox = new FrameInbox();

  constructor(
    readonly backend: NetBackend,
    readonly mac: Mac,
    options: NetOptions = {},
  ) {
    super();
    this.dataplaneKind = options.dataplane ?? "worker";
    this.config.set(mac, 0);
    const v = new DataView(this.config.buffer);
    v.setUint16(6, LINK_UP, true);
    v.setUint16(8, 1, true);
    v.setUint16(10, 1500, true);
    backend.open(
      (frame) => this.receive(frame),
      () => this.transmit(),
    );
  }

  /** Both queues go to workers when asked for and the backend has a frame fd (a tap, a unix datagram socket). */
  override dataPlane(queue: number): QueueDataPlane | undefined {
    const frames = this.backend.frameFd?.();
    if (this.dataplaneKind !== "worker" || frames === undefined) return undefined;
    const data: NetWorkerData = {
      role: queue === RX ? "rx" : "tx",
      ...frames,
      counters: this.workerCounters.buffer as SharedArrayBuffer,
      inbox: this.inbox.buffer,
    };
    return { module: builtModule("devices/net-worker.js"), data };
  }

  /**
   * The receive worker reads the backend's fd from now on: frames received here before are placed first (the
   * ring is still the JS thread's), and those the driver has no room for yet go to the worker in the inbox, ahead
   * of the backend's (beyond its slots, which a paused backend hardly ever needs, they are dropped and counted).
   */
  override queueLending(queue: number): void {
    if (queue === RX) {
      this.deliver();
      this.inbox.clear();
      for (const frame of this.backlog) if (!this.inbox.put(frame)) this.rxDropped++;
      this.backlog = [];
    }
    this.lent.add(queue);
    this.applyBackPressure();
  }

  /**
   * The JS thread reads the backend again (into the backlog until the ring is served: `resumed`, `notify`),
   * after the frames the receive worker had not placed, which come back through the inbox.
   */
  override queueReturned(queue: number): void {
    this.lent.delete(queue);
    if (queue === RX) this.backlog = [...this.inbox.drain(), ...this.backlog];
    this.applyBackPressure();
  }

  notify(queue: number): void {
    if (queue === TX) this.transmit();
    else if (queue === RX) this.deliver();
  }

  override async close(): Promise<void> {
    await this.backend.close();
  }

  protected override started(): void {
    this.deliver();
  }

  protected override resumed(): void {
    this.deliver();
  }

  /** A reset forgets frames meant for the old driver: they could never be delivered (oversized, say). */
  protected override stopped(): void {
    this.rxDropped += this.backlog.length;
    this.backlog = [];
    this.applyBackPressure();
  }

  /**
   * The frames received and not yet delivered (layout version 1). While the transport is quiesced, frames from
   * the backend land here instead of in guest memory, so guest RAM and the state agree. The backend itself is not
   * state: the restored device's backend connects anew from its options.
   */
  override saveState(): DeviceState {
    return { version: NET_STATE_VERSION, data: { backlog: this.backlog.map(encodeBytes) } };
  }

  /** Puts the saved frames before any the new backend already received; the driver gets them once running. */
  override restoreState(state: DeviceState | undefined, what: string): void {
    const data = stateData(state, what, NET_STATE_VERSION);
    const list = data.backlog;
    if (!Array.isArray(list) || list.length > RX_BACKLOG) throw new SnapshotError(`${what}: backlog must be a list of at most ${RX_BACKLOG} frames`);
    const frames = list.map((f: StateValue, i: number) => {
      const frame = decodeBytes(f, `${what}: backlog frame ${i}`);
      if (frame.length === 0 || frame.length > MAX_FRAME) throw new SnapshotError(`${what}: backlog frame ${i} has ${frame.length} bytes`);
      return frame;
    });
    this.backlog = [...frames, ...this.backlog].slice(0, RX_BACKLOG);
    this.applyBackPressure();
  }

  /** Received frames waiting for receive buffers. */
  get rxPending(): number {
    return this.backlog.length;
  }

  /**
   * Frames moved, dropped and waiting (`vmm run --stats`), the JS thread's and the workers' together, then the
   * backend's (`backend...`). `txDropped` counts frames the workers' backend fd did not take.
   */
  override counters(): Readonly<Record<string, number>> {
    const w = (i: number) => Number(Atomics.load(this.workerCounters, i));
    return {
      txFrames: this.txFrames + w(NetWorkerCounter.TX_FRAMES),
      txDropped: w(NetWorkerCounter.TX_DROPPED),
      rxFrames: this.rxFrames + w(NetWorkerCounter.RX_FRAMES),
      rxDropped: this.rxDropped + w(NetWorkerCounter.RX_DROPPED),
      rxOversized: this.rxOversized + w(NetWorkerCounter.RX_OVERSIZED),
      rxPending: this.backlog.length,
      ...this.backend.counters?.(),
    };
  }

  private headerSize(): number {
    return netHeaderSize(this.context?.features ?? 0n);
  }

  private transmit(): void {
    const ctx = this.context;
    if (!ctx || this.lent.has(TX)) return; // the transmit worker serves the ring (a backend's `writable` comes here too)
    const hdr = this.headerSize();
    this.drain(
      TX,
      (chain) => {
        if (chain.readableBytes > hdr) {
          const frame = new Uint8Array(chain.readableBytes - hdr);
          gather(ctx.memory, chain.readable, hdr, frame);
          this.backend.send(frame);
          this.txFrames++;
        }
        return 0;
      },
      // A congested backend leaves the rest in the ring until it calls back (open's `writable`).
      () => !this.backend.congested?.(),
    );
  }

  private receive(frame: Uint8Array): void {
    if (this.backlog.length >= RX_BACKLOG) {
      this.rxDropped++;
      return;
    }
    this.backlog.push(frame);
    this.deliver();
    this.applyBackPressure();
  }

  private dropOversized(ctx: NonNullable<VirtioNet["context"]>, length: number, limit: number): void {
    this.backlog.shift();
    this.rxDropped++;
    this.rxOversized++;
    if (this.rxOversized === 1 || this.rxOversized % 1000 === 0) {
      ctx.logger.warn(`virtio-net: dropped a received ${length}-byte frame over the driver's ${limit} (${this.rxOversized} so far)`);
    }
  }

  /**
   * While frames wait for receive buffers, a backend that can (tap) leaves further frames queued at the source;
   * while the receive worker reads the backend's fd itself, the JS thread does not.
   */
  private applyBackPressure(): void {
    if (this.lent.has(RX) || this.backlog.length) this.backend.pause?.();
    else this.backend.resume?.();
  }

  /** Moves backlogged frames into receive buffers while the guest has room (the receive queue is the JS thread's). */
  private deliver(): void {
    const ctx = this.context;
    if (!ctx?.busMaster || this.lent.has(RX)) return;
    const q = ctx.queue(RX);
    const mergeable = mergeableBuffers(ctx.features);
    const hdr = this.headerSize();
    const limit = maxReceiveFrame(ctx.features);
    const onBufferError = (head: number, e: Error) => ctx.logger.warn(`virtio-net: receive buffer ${head}: ${e.message}`);
    try {
      while (ctx.active && this.backlog.length) {
        const frame = this.backlog[0]!;
        if (frame.length > limit) {
          this.dropOversized(ctx, frame.length, limit);
          continue;
        }
        const packet = new Uint8Array(hdr + frame.length);
        packet.set(frame, hdr);
        const where = placePacket(q, ctx.memory, packet, hdr, mergeable, onBufferError);
        if (where === "no-room") break;
        this.backlog.shift();
        if (where === "placed") this.rxFrames++;
        else this.rxDropped++; // the guest's buffers are too small for this frame: drop it, keep the buffers
      }
    } catch (e) {
      ctx.fail(e);
      return;
    }
    ctx.signal(RX);
    this.applyBackPressure();
  }
}
