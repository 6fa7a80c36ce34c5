// virtio-net's data-plane worker module, one thread per queue, over a backend fd where each read and each write is
// one frame (a tap, a unix datagram socket): the transmit queue writes each chain's frame straight from guest
// memory (write or writev), the receive queue reads frames while the driver has buffers posted and places them with
// net-frames.ts's rules, the same as on the JS thread. While a queue is lent here, the JS thread's backend leaves
// the fd alone.
import { writevSync } from "node:fs";
import type { GuestMemory, Logger } from "@vmm/core";
import { readMessage, unixDgramConnect, waitWritable, writeMessage } from "@vmm/host-io";
import { errnoOf as errno, PEER_GONE } from "../backends/errno.js";
import { warnSometimes } from "../backends/frame-fd.js";
import { type FrameFd, MAX_FRAME } from "../backends/net-socket.js";
import { defineQueueWorker, type InputRing, type QueueInput, type QueueInputState, type QueueWorker } from "../dataplane/api.js";
import type { ChainSegment, DescriptorChain } from "../virtqueue/descriptor-chain.js";
import { FrameInbox, MAX_NET_HEADER, maxReceiveFrame, mergeableBuffers, netHeaderSize, NetWorkerCounter, placePacket } from "./net-frames.js";

/** What VirtioNet hands each of its queue's workers: the backend's frame fd (the JS thread keeps it open). */
export interface NetWorkerData extends FrameFd {
  readonly role: "rx" | "tx";
  /** NetWorkerCounter words (a BigInt64Array's buffer), shared with the device's `counters()`. */
  readonly counters: SharedArrayBuffer;
  /** The receive queue's FrameInbox: frames the device held when it lent the queue, and hands back. */
  readonly inbox: SharedArrayBuffer;
}

/** Frames one `fill` places before the runtime signals the driver and looks at its commands. */
const RX_BATCH = 64;
/**
 * How long a transmit waits for a full peer queue (a datagram peer that reads slower than the guest sends) before
 * the frame is dropped: meanwhile the guest's ring fills and the driver waits, as on a real link.
 */
const TX_WAIT_MS = 100;

/** Live views of the chain's driver-written bytes past the first `skip` (bounds-checked: GuestMemoryError). */
function framePart(memory: GuestMemory, segments: readonly ChainSegment[], skip: number): Uint8Array[] {
  const views: Uint8Array[] = [];
  for (const s of segments) {
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    for (const v of memory.segments(s.addr + skip, s.len - skip)) views.push(v);
    skip = 0;
  }
  return views;
}

function transmitter(memory: GuestMemory, features: () => bigint, data: NetWorkerData, counters: BigInt64Array, logger: Logger): QueueWorker {
  const drop = (why: string) => warnSometimes(logger, Atomics.add(counters, NetWorkerCounter.TX_DROPPED, 1n) + 1n, `virtio-net: dropped a transmitted frame: ${why}`);
  /** A datagram peer not bound yet, or gone (a restarted VM binds anew): connects again (one cheap syscall). */
  const reconnect = (): boolean => {
    if (data.peer === undefined) return false;
    try {
      unixDgramConnect(data.fd, data.peer);
      return true;
    } catch {
      return false;
    }
  };
  /**
   * One frame out: waits while the peer's queue is full, TX_WAIT_MS in all, and reconnects once to a peer that
   * went away.
   */
  const send = (views: Uint8Array[]): void => {
    let reconnected = false;
    let deadline = 0;
    /** Waits for room until the frame's deadline; false once it passed. */
    const room = (): boolean => {
      const now = performance.now();
      deadline ||= now + TX_WAIT_MS;
      return now < deadline && waitWritable(data.fd, Math.ceil(deadline - now));
    };
    for (;;) {
      try {
        // One buffer (a driver that puts the frame in one descriptor) goes straight to write(2); -1 is EAGAIN.
        const n = views.length === 1 ? writeMessage(data.fd, views[0]!) : writevSync(data.fd, views);
        if (n >= 0) {
          Atomics.add(counters, NetWorkerCounter.TX_FRAMES, 1n);
          return;
        }
        if (room()) continue;
        drop(`the backend took nothing for ${TX_WAIT_MS} ms`);
        return;
      } catch (e) {
        const code = errno(e);
        if (code === "EAGAIN" && room()) continue;
        if (PEER_GONE.has(code) && !reconnected && reconnect()) {
          reconnected = true;
          continue;
        }
        // EAGAIN past the wait (the peer stopped reading), no peer, EIO (a tap whose interface is down)
        drop(PEER_GONE.has(code) ? `no peer at ${data.peer ?? "the backend"}` : (e as Error).message);
        return;
      }
    }
  };
  return {
    process(chain: DescriptorChain): number {
      const header = netHeaderSize(features());
      const length = chain.readableBytes - header;
      if (length <= 0) return 0;
      if (length > MAX_FRAME) {
        drop(`${length} bytes is over ${MAX_FRAME}`);
        return 0;
      }
      send(framePart(memory, chain.readable, header));
      return 0;
    },
  };
}

function receiver(memory: GuestMemory, features: () => bigint, data: NetWorkerData, counters: BigInt64Array, logger: Logger): QueueWorker {
  // A frame is read MAX_NET_HEADER bytes in, so its packet (header + frame) needs no copy.
  const scratch = new Uint8Array(MAX_NET_HEADER + MAX_FRAME + 1); // one byte more than allowed reveals truncation
  let held = 0; // the length of a frame in `scratch` waiting for room, or 0
  let heldFromInbox = false;
  let broken = false;
  const inbox = new FrameInbox(data.inbox);
  const dropped = () => Atomics.add(counters, NetWorkerCounter.RX_DROPPED, 1n) + 1n;
  const onBufferError = (head: number, e: Error) => logger.warn(`virtio-net: receive buffer ${head}: ${e.message}`);

  const frameSpace = scratch.subarray(MAX_NET_HEADER);
  /** The next frame's length (empty datagrams skipped), 0 when none waits (or the fd failed: reported once, receiving stops). */
  function readFrame(): number {
    while (!broken) {
      try {
        const n = readMessage(data.fd, frameSpace); // -1 when none waits: no exception on the common path
        if (n < 0) return 0;
        if (n > 0) return n;
      } catch (e) {
        if (PEER_GONE.has(errno(e))) continue; // a datagram peer went away: reported once, reading goes on
        broken = true; // the interface was deleted under us, say: stop rather than spin on an fd that stays readable
        logger.error(`virtio-net: reading the backend failed (${(e as Error).message}); receiving stopped`);
      }
    }
    return 0;
  }

  const input: QueueInput = {
    fd: data.fd,
    fill(ring: InputRing): QueueInputState {
      const f = features();
      const header = netHeaderSize(f);
      const limit = maxReceiveFrame(f);
      const mergeable = mergeableBuffers(f);
      for (let placed = 0; placed < RX_BATCH; ) {
        if (held === 0) {
          if (ring.pending() === 0) return "starved"; // no room: the frame waits in the tap's queue, not here
          // The frames the device held when it lent the queue are older than any still in the backend.
          held = inbox.take(frameSpace);
          heldFromInbox = held > 0;
          if (!heldFromInbox) held = readFrame();
          if (held === 0) return broken ? "ended" : "dry";
        }
        const length = held;
        if (length > limit) {
          held = 0;
          const n = dropped();
          Atomics.add(counters, NetWorkerCounter.RX_OVERSIZED, 1n);
          warnSometimes(logger, n, `virtio-net: dropped a received ${length}-byte frame over the driver's ${limit}`);
          continue;
        }
        const packet = scratch.subarray(MAX_NET_HEADER - header, MAX_NET_HEADER + length);
        const where = placePacket(ring, memory, packet, header, mergeable, onBufferError);
        if (where === "no-room") return "starved";
        held = 0;
        if (where === "placed") {
          Atomics.add(counters, NetWorkerCounter.RX_FRAMES, 1n);
          placed++;
        } else {
          warnSometimes(logger, dropped(), `virtio-net: dropped a received ${length}-byte frame larger than the driver's buffers`);
        }
      }
      return "busy";
    },
    /** The frame held for want of room goes back to the device through the inbox, in front of any it did not take. */
    release(): void {
      if (held === 0) return;
      if (heldFromInbox) {
        inbox.untake();
      } else {
        inbox.clear(); // read from the backend, which happens only once every inbox frame was taken
        if (!inbox.put(frameSpace.subarray(0, held))) dropped(); // over a slot: only with receive offloads, never offered
      }
      held = 0;
    },
  };
  return { input };
}

export default defineQueueWorker((context) => {
  const d = context.data as NetWorkerData;
  const counters = new BigInt64Array(d.counters);
  const features = () => context.features; // read at each use: a driver renegotiates after a reset
  const make = d.role === "tx" ? transmitter : receiver;
  return make(context.memory, features, d, counters, context.logger);
});
