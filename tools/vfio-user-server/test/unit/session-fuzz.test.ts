import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { privateMemory } from "../../src/device/region.js";
import { type DeviceHost, irqCountsOf, SimulatedDevice } from "../../src/device/simulated-device.js";
import { DEVICE_NAMES, DEVICES } from "../../src/devices/index.js";
import { DmaMap } from "../../src/dma/dma-map.js";
import { DmaPort } from "../../src/dma/dma-port.js";
import { IrqState } from "../../src/irq/irq-state.js";
import { decodeHeader } from "../../src/protocol/header.js";
import { Session } from "../../src/session.js";
import type { Transport } from "../../src/transport.js";
import { Bytes, message, versionPayload } from "../support/wire.js";

/** A session over a fake transport: what it sends is collected; a wait for the client's reply times out at once. */
function session(device: (typeof DEVICE_NAMES)[number]) {
  const sent: Uint8Array[] = [];
  const transport: Transport = { receive: () => "timeout", send: (bytes) => void sent.push(bytes), close: () => undefined };
  const spec = DEVICES[device]();
  const irq = new IrqState(irqCountsOf(spec), { signal: () => undefined, isEventFd: () => true, close: () => undefined });
  const dmaMap = new DmaMap(256);
  let s: Session | undefined;
  const exits: number[] = [];
  const host: DeviceHost = {
    irq,
    dma: new DmaPort(dmaMap, { read: (a, n) => s!.read(a, n), write: (a, d) => s!.write(a, d) }, "fd"),
    memory: (_name, size) => privateMemory(size),
    exit: (status) => void exits.push(status),
    log: () => undefined,
  };
  const dev = new SimulatedDevice(spec, host);
  s = new Session({ transport, device: dev, irq, dmaMap, log: () => undefined, warn: (line) => { throw new Error(`internal error reported: ${line}`); } });
  return { session: s, sent, exits };
}

// Payloads that look like the real structures often enough to get past the first checks.
const field = fc.oneof(fc.constant(0), fc.constant(16), fc.constant(32), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 16 }));
const payload = fc.oneof(
  fc.uint8Array({ maxLength: 64 }),
  fc.tuple(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 5000 })).map(([o, r, c]) => new Bytes().u64(o).u32(r).u32(c).done()),
  fc.array(field, { minLength: 4, maxLength: 8 }).map((fields) => fields.reduce((b, v) => b.u32(v), new Bytes()).done()),
  fc.tuple(field, field, fc.bigInt({ min: 0n, max: 1n << 40n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: 1n << 33n })).map(([a, f, o, ad, sz]) => new Bytes().u32(a).u32(f).u64(o).u64(ad).u64(sz).done()),
);
const command = fc.record({ id: fc.integer({ min: 0, max: 0xffff }), cmd: fc.integer({ min: 0, max: 20 }), flags: fc.constantFrom(0, 0, 0, 1, 2, 0x10, 0x20), payload });

describe("Session against arbitrary commands", () => {
  it.each(DEVICE_NAMES)("%s: never throws, answers each command (unless no_reply) with a well-formed reply or error reply", (device) => {
    fc.assert(
      fc.property(fc.array(command, { maxLength: 30 }), (commands) => {
        const { session: s, sent } = session(device);
        s.handle({ header: decodeHeader(message(1, 1)), payload: versionPayload(0, 1, "{}"), fds: [] });
        for (const c of commands) {
          sent.length = 0;
          const bytes = message(c.id, c.cmd, c.payload, c.flags);
          s.handle({ header: decodeHeader(bytes), payload: c.payload, fds: [] });
          const isCommand = (c.flags & 0xf) === 0 || (c.flags & 0xf) === 2;
          const expectReply = (c.flags & 0xf) !== 1 && !(c.flags & 0x10);
          // An engine doorbell may send DMA requests first (they time out at once): the reply is the last message.
          const replies = sent.filter((m) => (decodeHeader(m).flags & 0xf) === 1);
          expect(replies.length).toBe(expectReply && isCommand ? 1 : 0);
          for (const r of replies) {
            const h = decodeHeader(r);
            expect([h.id, h.command, h.size]).toEqual([c.id, c.cmd, r.length]);
            if (h.flags & 0x20) expect([r.length, h.error > 0]).toEqual([16, true]);
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});
