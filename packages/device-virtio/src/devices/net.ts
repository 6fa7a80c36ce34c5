import { decodeBytes, type DeviceState, encodeBytes, SnapshotError, stateData, type StateValue } from "@vmm/core";
import { bit, VirtioType, FeatureBit } from "../constants.js";
import { VirtioDevice } from "../device.js";
import type { NetBackend } from "../backends/net-socket.js";
import { MAX_FRAME } from "../backends/net-socket.js";
import { type DescriptorChain, gather, scatter } from "../virtqueue/descriptor-chain.js";

/** virtio-net feature bits (virtio 1.x, 5.1.3). */
export const NetFeature = { MAC: 5, GUEST_TSO4: 7, GUEST_TSO6: 8, GUEST_UFO: 10, MRG_RXBUF: 15, STATUS: 16 } as const;
/** Largest frame a driver without receive offloads takes: 1500-byte MTU, Ethernet header and an 802.1Q tag. */
export const MAX_ETHERNET_FRAME = 1500 + 14 + 4;
/** Receive offloads that let the device pass frames of up to 64 KiB (5.1.6.3.1). */
const GUEST_GSO = bit(NetFeature.GUEST_TSO4) | bit(NetFeature.GUEST_TSO6) | bit(NetFeature.GUEST_UFO);
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

  constructor(
    readonly backend: NetBackend,
    readonly mac: Mac,
  ) {
    super();
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

  /** The largest frame the driver can take with the features it accepted. */
  private maxReceiveFrame(): number {
    return (this.context?.features ?? 0n) & GUEST_GSO ? MAX_FRAME : MAX_ETHERNET_FRAME;
  }

  /** Received frames waiting for receive buffers. */
  get rxPending(): number {
    return this.backlog.length;
  }

  /** Frames sent, dropped and waiting (`vmm run --stats`), then the backend's (`backend...`). */
  override counters(): Readonly<Record<string, number>> {
    return {
      txFrames: this.txFrames,
      rxDropped: this.rxDropped,
      rxOversized: this.rxOversized,
      rxPending: this.backlog.length,
      ...this.backend.counters?.(),
    };
  }

  /** virtio_net_hdr size: 12 bytes with VERSION_1 or mergeable buffers, 10 for legacy drivers without them. */
  private headerSize(): number {
    const f = this.context?.features ?? 0n;
    return f & (bit(FeatureBit.VERSION_1) | bit(NetFeature.MRG_RXBUF)) ? 12 : 10;
  }

  private transmit(): void {
    const ctx = this.context;
    if (!ctx) return;
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

  /** While frames wait for receive buffers, a backend that can (tap) leaves further frames queued at the source. */
  private applyBackPressure(): void {
    if (this.backlog.length) this.backend.pause?.();
    else this.backend.resume?.();
  }

  /** Moves backlogged frames into receive buffers while the guest has room. */
  private deliver(): void {
    const ctx = this.context;
    if (!ctx?.busMaster) return;
    const q = ctx.queue(RX);
    const mergeable = (ctx.features & bit(NetFeature.MRG_RXBUF)) !== 0n;
    const hdr = this.headerSize();
    const limit = this.maxReceiveFrame();
    try {
      while (ctx.active && this.backlog.length) {
        const frame = this.backlog[0]!;
        if (frame.length > limit) {
          this.dropOversized(ctx, frame.length, limit);
          continue;
        }
        const total = hdr + frame.length;
        // Collect enough chains for the whole frame before writing anything: one without mergeable buffers.
        const chains: DescriptorChain[] = [];
        let room = 0;
        let entries = 0;
        while (room < total && (mergeable || chains.length === 0)) {
          const chain = q.pop();
          if (!chain) break;
          chains.push(chain);
          room += chain.writableBytes;
          entries += chain.tableEntries;
        }
        if (room < total) {
          for (let i = 0; i < chains.length; i++) q.undoPop();
          // Wait for more buffers only while the driver can still post some: with the whole ring in the
          // device's hands the frame can never fit, and waiting would wedge receive for good.
          const ringFull = entries >= q.size || chains.length >= q.size;
          if (chains.length === 0 || (mergeable && !ringFull)) break;
          this.backlog.shift(); // the guest's buffers are too small for this frame: drop it, keep the buffers
          this.rxDropped++;
          continue;
        }
        this.backlog.shift();
        const packet = new Uint8Array(total);
        packet.set(frame, hdr);
        if (hdr === 12) new DataView(packet.buffer).setUint16(10, chains.length, true); // num_buffers
        let offset = 0;
        for (const chain of chains) {
          let written = 0;
          try {
            written = scatter(ctx.memory, chain.writable, 0, packet.subarray(offset));
          } catch (e) {
            ctx.logger.warn(`virtio-net: receive buffer ${chain.head}: ${(e as Error).message}`);
          }
          offset += written;
          q.push(chain.head, written);
        }
      }
    } catch (e) {
      ctx.fail(e);
      return;
    }
    ctx.signal(RX);
    this.applyBackPressure();
  }
}
