// virtio-net's frame rules, shared by the JS thread (net.ts) and the data-plane worker (net-worker.ts): the
// virtio_net_hdr's size, the largest frame the driver takes, and how one received frame goes into receive chains.
import type { GuestMemory } from "@vmm/core";
import { bit, FeatureBit } from "../constants.js";
import { MAX_FRAME } from "../backends/net-socket.js";
import { type DescriptorChain, scatter } from "../virtqueue/descriptor-chain.js";

/** virtio-net feature bits (virtio 1.x, 5.1.3). */
export const NetFeature = { MAC: 5, GUEST_TSO4: 7, GUEST_TSO6: 8, GUEST_UFO: 10, MRG_RXBUF: 15, STATUS: 16 } as const;
/** Largest frame a driver without receive offloads takes: 1500-byte MTU, Ethernet header and an 802.1Q tag. */
export const MAX_ETHERNET_FRAME = 1500 + 14 + 4;
/** Receive offloads that let the device pass frames of up to 64 KiB (5.1.6.3.1). */
const GUEST_GSO = bit(NetFeature.GUEST_TSO4) | bit(NetFeature.GUEST_TSO6) | bit(NetFeature.GUEST_UFO);
/** The largest virtio_net_hdr. */
export const MAX_NET_HEADER = 12;

/** virtio_net_hdr size: 12 bytes with VERSION_1 or mergeable buffers, 10 for legacy drivers without them. */
export function netHeaderSize(features: bigint): number {
  return features & (bit(FeatureBit.VERSION_1) | bit(NetFeature.MRG_RXBUF)) ? 12 : 10;
}

/** The largest frame the driver can take with the features it accepted. */
export function maxReceiveFrame(features: bigint): number {
  return features & GUEST_GSO ? MAX_FRAME : MAX_ETHERNET_FRAME;
}

export function mergeableBuffers(features: bigint): boolean {
  return (features & bit(NetFeature.MRG_RXBUF)) !== 0n;
}

/** The receive queue as frames go into it (a SplitQueue, or the worker's view of it). */
export interface ReceiveRing {
  readonly size: number;
  pop(): DescriptorChain | undefined;
  undoPop(): void;
  push(head: number, written: number): void;
}

/**
 * Where one packet went: `placed` in the guest's chains; `no-room` (nothing taken: wait for the driver to post
 * more); `too-small` (the driver's chains can never hold it: the whole ring is posted, or buffers are not
 * mergeable; nothing taken, the caller drops the frame).
 */
export type Placement = "placed" | "no-room" | "too-small";

/**
 * Puts `packet` (a virtio_net_hdr of `header` bytes, then the frame) into receive chains: one chain, or with
 * mergeable buffers as many as it needs, collected before anything is written. The header's fields are set here
 * (all zero but num_buffers). A chain whose buffers lie outside RAM is returned with what was written and
 * reported to `onBufferError`.
 */
export function placePacket(
  ring: ReceiveRing,
  memory: GuestMemory,
  packet: Uint8Array,
  header: number,
  mergeable: boolean,
  onBufferError: (head: number, error: Error) => void,
): Placement {
  const total = packet.length;
  const chains: DescriptorChain[] = [];
  let room = 0;
  let entries = 0;
  while (room < total && (mergeable || chains.length === 0)) {
    const chain = ring.pop();
    if (!chain) break;
    chains.push(chain);
    room += chain.writableBytes;
    entries += chain.tableEntries;
  }
  if (room < total) {
    for (let i = 0; i < chains.length; i++) ring.undoPop();
    // Wait for more buffers only while the driver can still post some: with the whole ring in the device's hands
    // the frame can never fit, and waiting would wedge receive for good.
    const ringFull = entries >= ring.size || chains.length >= ring.size;
    return chains.length === 0 || (mergeable && !ringFull) ? "no-room" : "too-small";
  }
  packet.fill(0, 0, header);
  if (header === 12) new DataView(packet.buffer, packet.byteOffset, header).setUint16(10, chains.length, true); // num_buffers
  let offset = 0;
  for (const chain of chains) {
    let written = 0;
    try {
      written = scatter(memory, chain.writable, 0, packet.subarray(offset));
    } catch (e) {
      onBufferError(chain.head, e as Error);
    }
    offset += written;
    ring.push(chain.head, written);
  }
  return "placed";
}

/** The data-plane workers' counters, as words of a BigInt64Array over a SharedArrayBuffer the device reads. */
export const NetWorkerCounter = { TX_FRAMES: 0, TX_DROPPED: 1, RX_FRAMES: 2, RX_DROPPED: 3, RX_OVERSIZED: 4, WORDS: 5 } as const;

/**
 * Frames handed between the JS thread and the receive worker when the queue changes hands, so none is lost or
 * reordered: the device's backlog goes to the worker when it lends the queue, and what the worker had not placed
 * comes back when it is returned. Only the side that owns the queue touches it (the hand-over's Atomics order
 * it). A few slots of a full Ethernet frame each: the device pauses its backend as soon as one frame waits, so its
 * backlog is short, and larger frames are over what a driver without receive offloads (none are offered) takes.
 */
export class FrameInbox {
  static readonly SLOTS = 8;
  static readonly SLOT_BYTES = MAX_ETHERNET_FRAME;
  private static readonly COUNT = 0;
  private static readonly TAKEN = 1;
  private static readonly HEADER_WORDS = 2 + FrameInbox.SLOTS;
  private readonly words: Int32Array;
  private readonly bytes: Uint8Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(FrameInbox.HEADER_WORDS * 4 + FrameInbox.SLOTS * FrameInbox.SLOT_BYTES)) {
    this.words = new Int32Array(buffer, 0, FrameInbox.HEADER_WORDS);
    this.bytes = new Uint8Array(buffer, FrameInbox.HEADER_WORDS * 4);
  }

  /** Frames put and not taken. */
  get waiting(): number {
    return this.words[FrameInbox.COUNT]! - this.words[FrameInbox.TAKEN]!;
  }

  clear(): void {
    this.words[FrameInbox.COUNT] = 0;
    this.words[FrameInbox.TAKEN] = 0;
  }

  /** Appends a frame; false when it has no room (slots full, or the frame larger than a slot). */
  put(frame: Uint8Array): boolean {
    const n = this.words[FrameInbox.COUNT]!;
    if (n >= FrameInbox.SLOTS || frame.length > FrameInbox.SLOT_BYTES) return false;
    this.bytes.set(frame, n * FrameInbox.SLOT_BYTES);
    this.words[2 + n] = frame.length;
    this.words[FrameInbox.COUNT] = n + 1;
    return true;
  }

  /** Copies the next frame into `into` (at least SLOT_BYTES long) and returns its length; 0 when none waits. */
  take(into: Uint8Array): number {
    const i = this.words[FrameInbox.TAKEN]!;
    if (i >= this.words[FrameInbox.COUNT]!) return 0;
    const length = this.words[2 + i]!;
    into.set(this.bytes.subarray(i * FrameInbox.SLOT_BYTES, i * FrameInbox.SLOT_BYTES + length));
    this.words[FrameInbox.TAKEN] = i + 1;
    return length;
  }

  /** Puts the frame just taken back in front (its bytes are still in its slot). */
  untake(): void {
    if (this.words[FrameInbox.TAKEN]! > 0) this.words[FrameInbox.TAKEN]!--;
  }

  /** The frames not taken, in order, copied out; the inbox is empty afterwards. */
  drain(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (let i = this.words[FrameInbox.TAKEN]!; i < this.words[FrameInbox.COUNT]!; i++) {
      out.push(this.bytes.slice(i * FrameInbox.SLOT_BYTES, i * FrameInbox.SLOT_BYTES + this.words[2 + i]!));
    }
    this.clear();
    return out;
  }
}