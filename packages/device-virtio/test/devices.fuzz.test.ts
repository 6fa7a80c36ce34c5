import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bit, Status } from "../src/constants.js";
import { MemoryBlockBackend } from "../src/backends/block.js";
import { StreamChannel } from "../src/backends/channel.js";
import { MAX_FRAME, type NetBackend } from "../src/backends/net-socket.js";
import type { VirtioDevice } from "../src/device.js";
import { VirtioBlk } from "../src/devices/blk.js";
import { VirtioConsole } from "../src/devices/console.js";
import { MAX_ETHERNET_FRAME, NetFeature, VirtioNet } from "../src/devices/net.js";
import { VirtioRng } from "../src/devices/rng.js";
import { RAM_BASE } from "./driver.js";
import { setupTransport, until } from "./harness.js";
import { randomRing } from "./random-rings.js";

const nullNet: NetBackend = { open() {}, send() {}, async close() {} };
const makers: Record<string, () => VirtioDevice> = {
  blk: () => new VirtioBlk(new MemoryBlockBackend(new Uint8Array(64 * 512))),
  rng: () => new VirtioRng(),
  net: () => new VirtioNet(nullNet, [0x52, 0x54, 0, 0, 0, 1]),
  console: () => new VirtioConsole(new StreamChannel(undefined, undefined)),
};

/**
 * Random descriptor tables, headers and avail rings thrown at whole devices through the transport: a kick never
 * throws, the device either completes chains (used index moves by at most what was made available) or sets
 * DEVICE_NEEDS_RESET, and a reset always brings it back.
 */
describe("devices under random rings (property)", () => {
  it.each(Object.keys(makers))("%s never throws out of a notification", async (kind) => {
    await fc.assert(
      fc.asyncProperty(
        ...randomRing,
        async (descs, heads, noise, availIdx) => {
          const t = setupTransport(makers[kind]!(), 1 << 20);
          t.driver.init({ queueSizes: t.transport.queues.map(() => 8) });
          t.mem.write(RAM_BASE + 0x6000, noise); // random request headers where descriptors may point
          for (const ring of t.driver.rings) {
            descs.forEach((d, i) => ring.writeDesc(i, d.addr, d.len, d.flags, d.next));
            heads.forEach((h) => ring.publish(h));
            if (availIdx > heads.length) ring.setAvailIdx(availIdx);
          }
          for (let q = 0; q < t.driver.rings.length; q++) expect(() => t.driver.kick(q)).not.toThrow();
          const device = t.transport.device;
          if (device instanceof VirtioBlk) await until(() => device.pendingRequests === 0);
          const broken = (t.driver.status() & Status.DEVICE_NEEDS_RESET) !== 0;
          for (const ring of t.driver.rings) {
            const used = ring.usedIdx();
            expect(used).toBeLessThanOrEqual(Math.max(heads.length, availIdx));
            if (!broken) for (const u of ring.takeUsed()) expect(u.id).toBeLessThan(8);
          }
          expect(t.driver.init()).toBe(true); // a reset always brings the device back
        },
      ),
      { numRuns: 150 },
    );
  });
});

/**
 * virtio-net receive under random frame sizes (oversized ones included), random receive buffers (tiny ones too)
 * and resets while frames wait: nothing over the negotiated limit reaches the guest, no frame meant for a driver
 * that was reset reaches the next one, and receive never wedges: once the guest keeps posting full-size buffers a
 * final frame always arrives.
 */
describe("virtio-net receive under random frames, buffers and resets (property)", () => {
  class Loopback implements NetBackend {
    receive: ((f: Uint8Array) => void) | undefined;
    open(receive: (f: Uint8Array) => void) {
      this.receive = receive;
    }
    send() {}
    async close() {}
  }
  const SIZE = 8;
  const HDR = 12;
  const action = fc.oneof(
    fc.record({
      kind: fc.constant("frame" as const),
      len: fc.oneof(fc.integer({ min: 14, max: 1600 }), fc.integer({ min: MAX_ETHERNET_FRAME - 2, max: MAX_ETHERNET_FRAME + 2 }), fc.integer({ min: 1519, max: MAX_FRAME })),
    }),
    fc.record({ kind: fc.constant("post" as const), size: fc.oneof(fc.integer({ min: 16, max: 160 }), fc.constant(2048)), count: fc.integer({ min: 1, max: SIZE }) }),
    fc.record({ kind: fc.constant("reset" as const) }),
  );

  it.each([true, false])("mergeable receive buffers: %s", (mergeable) => {
    fc.assert(
      fc.property(fc.array(action, { maxLength: 30 }), (actions) => {
        const backend = new Loopback();
        const device = new VirtioNet(backend, [0x52, 0x54, 0, 0, 0, 1]);
        const t = setupTransport(device, 2 << 20);
        let epoch = 1; // every byte of a frame is its driver generation, so stale frames are recognisable
        let ring = t.driver.rings[0]!;
        let posted = new Map<number, number>(); // head -> buffer address
        let outstanding = 0;
        const start = () => {
          t.driver.rings.length = 0;
          const features = (f: bigint) => (mergeable ? f : f & ~bit(NetFeature.MRG_RXBUF));
          expect(t.driver.init({ queueSizes: [SIZE, SIZE], features })).toBe(true);
          ring = t.driver.rings[0]!;
          posted = new Map();
          outstanding = 0;
        };
        const post = (size: number, count: number) => {
          for (let i = 0; i < count && outstanding < SIZE; i++, outstanding++) {
            const addr = t.alloc.alloc(size);
            posted.set(ring.post([{ addr, len: size, write: true }]), addr);
          }
          t.driver.kick(0);
        };
        /** Checks what the device returned; true when the frame tagged `marker` was among it. */
        const collect = (marker?: number): boolean => {
          const used = ring.takeUsed();
          outstanding -= used.length;
          let seen = false;
          for (let i = 0; i < used.length; ) {
            const first = used[i]!;
            expect(first.len).toBeGreaterThanOrEqual(HDR);
            const n = t.mem.readU16(posted.get(first.id)! + 10);
            expect(n).toBeGreaterThanOrEqual(1);
            const bytes: number[] = [];
            for (let k = 0; k < n; k++) {
              const u = used[i + k]!;
              expect(u).toBeDefined();
              bytes.push(...t.mem.view(posted.get(u.id)!, u.len).subarray(k === 0 ? HDR : 0));
            }
            i += n;
            expect(bytes.length).toBeLessThanOrEqual(MAX_ETHERNET_FRAME);
            expect(bytes.every((b) => b === bytes[0])).toBe(true);
            expect(bytes[0]).toBe(epoch & 0xff); // never a frame from before the last reset
            if (marker !== undefined && bytes.length === marker) seen = true;
          }
          return seen;
        };
        start();
        for (const a of actions) {
          if (a.kind === "frame") backend.receive!(new Uint8Array(a.len).fill(epoch & 0xff));
          else if (a.kind === "post") post(a.size, a.count);
          else {
            epoch++;
            start();
          }
          collect();
          expect(t.driver.status() & Status.DEVICE_NEEDS_RESET).toBe(0);
        }
        // No wedge: with full-size buffers kept posted, nothing keeps waiting and a final frame (small enough for
        // any buffer the guest posted) gets through behind whatever waited.
        const marker = 4;
        backend.receive!(new Uint8Array(marker).fill(epoch & 0xff));
        let arrived = false;
        for (let round = 0; round < 40 && !arrived; round++) {
          post(2048, SIZE);
          arrived = collect(marker);
        }
        expect(arrived).toBe(true);
        expect(device.rxPending).toBe(0);
      }),
      { numRuns: 150 },
    );
  });
});
