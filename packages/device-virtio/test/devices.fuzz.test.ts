import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Status } from "../src/constants.js";
import { MemoryBlockBackend } from "../src/backends/block.js";
import { StreamChannel } from "../src/backends/channel.js";
import type { NetBackend } from "../src/backends/net-socket.js";
import type { VirtioDevice } from "../src/device.js";
import { VirtioBlk } from "../src/devices/blk.js";
import { VirtioConsole } from "../src/devices/console.js";
import { VirtioNet } from "../src/devices/net.js";
import { VirtioRng } from "../src/devices/rng.js";
import { RAM_BASE } from "./driver.js";
import { setupTransport, until } from "./harness.js";

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
        fc.array(
          fc.record({
            addr: fc.oneof(fc.integer({ min: RAM_BASE, max: RAM_BASE + 0x8000 }), fc.integer({ min: 0, max: 2 ** 40 })),
            len: fc.oneof(fc.integer({ min: 0, max: 1100 }), fc.integer({ min: 0, max: 0xffff_ffff })),
            flags: fc.integer({ min: 0, max: 7 }),
            next: fc.integer({ min: 0, max: 12 }),
          }),
          { minLength: 8, maxLength: 8 },
        ),
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 8 }),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.integer({ min: 0, max: 12 }),
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
