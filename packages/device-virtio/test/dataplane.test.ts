import { writeSync } from "node:fs";
import fc from "fast-check";
import { EventFd } from "@vmm/host-io";
import { afterEach, describe, expect, it } from "vitest";
import { NO_VECTOR, Status, VirtioType } from "../src/constants.js";
import type { QueueDataPlane } from "../src/dataplane/api.js";
import { VirtioDevice } from "../src/device.js";
import { BlkStatus, BlkType, VirtioBlk } from "../src/devices/blk.js";
import { ALL_BUT, FeatureBit, type ModernDriver, setupTransport, until } from "./harness.js";
import { closeMemfds, makeMemfdMemory, MemfdBlockBackend } from "./memfd-ram.js";
import { randomRing, reinitOneQueue, throwRandomRing } from "./random-rings.js";

const pattern = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A plugin-style device whose only queue runs test/fixtures/fill-worker.mjs; `notify` must never be reached. */
class FillDevice extends VirtioDevice {
  readonly type = VirtioType.ENTROPY;
  readonly queueSizes = [8];
  readonly features = 0n;
  readonly config = new Uint8Array(0);
  notified = 0;
  notify(): void {
    this.notified++;
  }
  override dataPlane(): QueueDataPlane {
    return { module: new URL("./fixtures/fill-worker.mjs", import.meta.url), data: { byte: 0x5a } };
  }
}

/** A device whose only queue is input-driven by test/fixtures/stuck-input-worker.mjs, which reports `state` from every fill. */
class StuckInputDevice extends VirtioDevice {
  readonly type = VirtioType.ENTROPY;
  readonly queueSizes = [8];
  readonly features = 0n;
  readonly config = new Uint8Array(0);
  constructor(private readonly state: "ended" | "starved") {
    super();
  }
  notify(): void {}
  override dataPlane(): QueueDataPlane {
    return { module: new URL("./fixtures/stuck-input-worker.mjs", import.meta.url), data: { state: this.state } };
  }
}

const open: Array<{ shutdown(): void }> = [];
const fds: EventFd[] = [];
afterEach(() => {
  for (const t of open.splice(0)) t.shutdown();
  for (const f of fds.splice(0)) f.close();
  closeMemfds();
});

function rig<D extends VirtioDevice>(device: D) {
  const t = setupTransport(device, 4 << 20, makeMemfdMemory());
  open.push(t.transport);
  return { ...t, device, plane: () => t.transport.dataPlane(0)! };
}

function blkRig() {
  const disk = new MemfdBlockBackend(pattern(64 * 512));
  return { ...rig(new VirtioBlk(disk)), disk };
}

/** A 512-byte read of `sector`: returns the chain head and where its data and status land. */
function read(d: ModernDriver, sector: bigint) {
  const hdr = d.alloc.alloc(16);
  d.mem.writeU32(hdr, BlkType.IN);
  d.mem.writeU64(hdr + 8, sector);
  const data = d.alloc.alloc(512);
  const status = d.alloc.alloc(1);
  d.mem.writeU8(status, 0xff);
  const head = d.rings[0]!.post([{ addr: hdr, len: 16 }, { addr: data, len: 512, write: true }, { addr: status, len: 1, write: true }]);
  return { head, data, status };
}

describe("data-plane workers (memfd-backed RAM, no KVM)", () => {
  it("a plugin device's worker module serves its queue; the JS thread's notify is never called", async () => {
    const { driver, device, logger, plane } = rig(new FillDevice());
    driver.init();
    const ring = driver.rings[0]!;
    const buf = driver.alloc.alloc(64);
    const head = ring.post([{ addr: buf, len: 64, write: true }]);
    driver.kick(0);
    await until(() => ring.usedIdx() === 1);
    expect(ring.takeUsed()).toEqual([{ id: head, len: 64 }]);
    expect([...driver.mem.view(buf, 64)].every((b) => b === 0x5a)).toBe(true);
    expect(device.notified).toBe(0);
    expect(plane().stats.completed).toBe(1);
    await until(() => logger.lines.some((l) => l.includes("fill worker ready")));
  });

  it("a doorbell written straight to the queue's eventfd (as KVM's ioeventfd does) is served without the JS thread", async () => {
    const { driver, transport } = blkRig();
    driver.init();
    const r = read(driver, 2n);
    writeSync(transport.doorbellEventFd(0)!, new BigUint64Array([1n]));
    await until(() => driver.rings[0]!.usedIdx() === 1);
    expect(driver.mem.readU8(r.status)).toBe(BlkStatus.OK);
    expect([...driver.mem.view(r.data, 512)]).toEqual([...pattern(64 * 512).subarray(1024, 1536)]);
  });

  it("interrupts go to the vector's irqfd while it is deliverable, and through the JS thread (pending bit) while masked", async () => {
    const { driver, transport, sink } = blkRig();
    const irqfd = new EventFd();
    fds.push(irqfd);
    let masked = false;
    Object.assign(sink, { msixEventFd: (v: number) => (v === 1 && !masked ? irqfd.fd : undefined) });
    sink.msixOn = true;
    // Without EVENT_IDX every completion asks for an interrupt (the avail ring's NO_INTERRUPT flag is clear).
    driver.init({ vectors: [1], features: (f) => ALL_BUT(f, FeatureBit.RING_EVENT_IDX) });
    read(driver, 0n);
    driver.kick(0);
    await until(() => irqfd.read() === 1n);
    expect(sink.sent).toEqual([]);
    expect(transport.dataPlane(0)!.stats.irqfdSignals).toBe(1);
    masked = true;
    transport.interruptRoutesChanged();
    read(driver, 1n);
    driver.kick(0);
    await until(() => sink.sent.length === 1);
    expect(sink.sent).toEqual([1]);
    expect(irqfd.read()).toBe(null);
    // NO_VECTOR: no interrupt at all.
    driver.w(0x16, 2, 0);
    driver.w(0x1a, 2, NO_VECTOR);
    read(driver, 2n);
    driver.kick(0);
    await until(() => driver.rings[0]!.usedIdx() === 3);
    await sleep(20);
    expect(sink.sent).toEqual([1]);
    // INTx (MSI-X off): the JS thread sets the ISR and the line.
    sink.msixOn = false;
    transport.interruptRoutesChanged();
    read(driver, 3n);
    driver.kick(0);
    await until(() => sink.level);
  });

  it("Bus Master Enable off: the worker stops at a request boundary, doorbells wait, and are served once it is set", async () => {
    const { driver, transport } = blkRig();
    driver.init();
    const ring = driver.rings[0]!;
    read(driver, 0n);
    driver.kick(0);
    await until(() => ring.usedIdx() === 1);
    transport.setBusMaster(false);
    expect(transport.dataPlane(0)!.isLent).toBe(false);
    const r = read(driver, 1n);
    driver.kick(0);
    await sleep(30);
    expect(ring.usedIdx()).toBe(1);
    expect(driver.mem.readU8(r.status)).toBe(0xff);
    transport.setBusMaster(true);
    await until(() => ring.usedIdx() === 2);
    expect(driver.mem.readU8(r.status)).toBe(BlkStatus.OK);
  });

  it("starts the worker thread at the driver's ACKNOWLEDGE, ahead of DRIVER_OK, and lends it the queue only then", async () => {
    const { driver, transport } = blkRig();
    expect(transport.dataPlane(0)!.started).toBe(false);
    driver.w(0x14, 1, 1); // ACKNOWLEDGE
    expect(transport.dataPlane(0)!.started).toBe(true);
    expect(transport.dataPlane(0)!.isLent).toBe(false);
    driver.w(0x14, 1, 0);
    driver.init();
    const r = read(driver, 2n);
    driver.kick(0);
    await until(() => driver.rings[0]!.usedIdx() === 1);
    expect(driver.mem.readU8(r.status)).toBe(BlkStatus.OK);
    expect(transport.dataPlane(0)!.stats.completed).toBe(1);
  });

  it("quiesce takes the ring back with everything published; a restored device goes on at the saved position, on its worker", async () => {
    const { driver, transport } = blkRig();
    driver.init();
    const ring = driver.rings[0]!;
    for (let i = 0; i < 3; i++) read(driver, BigInt(i));
    driver.kick(0);
    await until(() => ring.usedIdx() === 3);
    await transport.quiesce();
    expect(transport.dataPlane(0)!.isLent).toBe(false);
    expect(transport.queues[0]!.saved()).toMatchObject({ nextAvail: 3, usedIdx: 3 });
    // A doorbell while quiesced is remembered, not served.
    const held = read(driver, 5n);
    driver.kick(0);
    await sleep(30);
    expect(ring.usedIdx()).toBe(3);
    const state = transport.saveState();
    driver.w(0x14, 1, 0); // reset: cursors to 0, worker stopped
    expect(transport.queues[0]!.saved().usedIdx).toBe(0);
    const completed = transport.dataPlane(0)!.stats.completed;
    transport.restoreState(state, true);
    // The worker views the machine's own RAM mapping (a lazy restore's pages fill on its first touch too): the
    // restored queue is lent to it again.
    expect(transport.dataPlane(0)!.isLent).toBe(true);
    expect(transport.doorbellEventFd(0)).toBeTypeOf("number");
    await until(() => ring.usedIdx() === 4); // the saved doorbell is served at once, at the saved position
    expect(ring.takeUsed().at(-1)).toEqual({ id: held.head, len: 513 });
    expect(driver.mem.readU8(held.status)).toBe(BlkStatus.OK);
    read(driver, 6n);
    driver.kick(0);
    await until(() => ring.usedIdx() === 5);
    expect(transport.dataPlane(0)!.stats.completed).toBe(completed + 2);
  });

  it("resume after quiesce serves the doorbells rung meanwhile", async () => {
    const { driver, transport } = blkRig();
    driver.init();
    const ring = driver.rings[0]!;
    await transport.quiesce();
    read(driver, 1n);
    driver.kick(0);
    await sleep(20);
    expect(ring.usedIdx()).toBe(0);
    transport.resume();
    await until(() => ring.usedIdx() === 1);
  });

  it("with pollMicros the worker takes chains posted soon after the ring ran dry without a doorbell, and still stops on request", async () => {
    const disk = new MemfdBlockBackend(pattern(64 * 512));
    const { driver, transport } = rig(new VirtioBlk(disk, { pollMicros: 1_000_000 }));
    driver.init();
    const ring = driver.rings[0]!;
    read(driver, 0n);
    driver.kick(0);
    await until(() => ring.usedIdx() === 1);
    const quiet = read(driver, 1n); // no doorbell: the worker is still looking at the ring
    await until(() => ring.usedIdx() === 2, 900);
    expect(driver.mem.readU8(quiet.status)).toBe(BlkStatus.OK);
    const t0 = Date.now();
    transport.setBusMaster(false); // taken back at once, not after the poll window
    expect(Date.now() - t0).toBeLessThan(500);
    expect(transport.dataPlane(0)!.isLent).toBe(false);
  });

  it("a module that throws puts the device in DEVICE_NEEDS_RESET; after a reset the worker serves again", async () => {
    const { driver, device } = rig(new FillDevice());
    driver.init();
    const buf = driver.alloc.alloc(64);
    driver.rings[0]!.post([{ addr: buf, len: 13, write: true }]);
    driver.kick(0);
    await until(() => (driver.status() & Status.DEVICE_NEEDS_RESET) !== 0);
    driver.rings.length = 0;
    expect(driver.init()).toBe(true);
    const head = driver.rings[0]!.post([{ addr: buf, len: 64, write: true }]);
    driver.kick(0);
    await until(() => driver.rings[0]!.usedIdx() === 1);
    expect(driver.rings[0]!.takeUsed()).toEqual([{ id: head, len: 64 }]);
    expect(device.notified).toBe(0);
  });

  it("an input that ended is looked at again only when the driver rings, where a starved one with chains posted is rechecked every millisecond", async () => {
    /** fill() calls in 200 ms of quiet with two chains posted; then a doorbell must still bring one more. */
    const quietFills = async (state: "ended" | "starved") => {
      const { driver, logger } = rig(new StuckInputDevice(state));
      driver.init();
      const ring = driver.rings[0]!;
      for (let i = 0; i < 2; i++) ring.post([{ addr: driver.alloc.alloc(64), len: 64, write: true }]);
      driver.kick(0);
      const fills = () => logger.lines.filter((l) => l.includes("stuck input: fill")).length;
      await until(() => fills() >= 1);
      await sleep(200);
      const quiet = fills();
      driver.kick(0);
      await until(() => fills() > quiet);
      return quiet;
    };
    expect(await quietFills("starved")).toBeGreaterThan(20); // the recheck this test must be able to see
    expect(await quietFills("ended")).toBeLessThanOrEqual(3);
  });
});

describe("a data-plane worker that cannot run", () => {
  it("a missing worker module: DEVICE_NEEDS_RESET once, then the JS thread serves the queue, doorbells on the eventfd included", async () => {
    class Orphan extends FillDevice {
      override dataPlane(): QueueDataPlane {
        return { module: new URL("./fixtures/no-such-worker.mjs", import.meta.url) };
      }
    }
    const { driver, device, transport, logger } = rig(new Orphan());
    driver.init();
    await until(() => (driver.status() & Status.DEVICE_NEEDS_RESET) !== 0);
    expect(logger.lines.some((l) => l.includes("did not start"))).toBe(true);
    await until(() => !transport.dataPlane(0)!.alive);
    driver.rings.length = 0;
    expect(driver.init()).toBe(true);
    driver.kick(0); // a trapped doorbell
    expect(device.notified).toBe(1);
    writeSync(transport.doorbellEventFd(0)!, new BigUint64Array([1n])); // as KVM's ioeventfd would
    await until(() => device.notified === 2);
    expect(driver.status() & Status.DEVICE_NEEDS_RESET).toBe(0);
  });
});

/**
 * The hostile-guest property of devices.fuzz.test.ts, through the worker: random descriptor tables, headers and
 * avail rings on one virtio-blk whose queue runs on its data-plane thread, re-initialised by the driver for each
 * case. The worker only ever completes chains or reports DEVICE_NEEDS_RESET, never dies, and serves a good
 * request after every case.
 */
describe("virtio-blk's worker under random rings (property)", () => {
  it("never crashes the worker, completes or needs a reset, and recovers after a reset", async () => {
    const { driver, transport, mem } = blkRig();
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(
        ...randomRing,
        async (...ringCase) => {
          runs++;
          const { ring, published, needsReset } = await throwRandomRing(driver, mem, ringCase);
          expect(ring.usedIdx()).toBeLessThanOrEqual(published);
          if (!needsReset) for (const u of ring.takeUsed()) expect(u.id).toBeLessThan(8);
          // A reset brings the worker back: a good request is served.
          reinitOneQueue(driver);
          const r = read(driver, 1n);
          driver.kick(0);
          await until(() => driver.rings[0]!.usedIdx() === 1);
          expect(mem.readU8(r.status)).toBe(BlkStatus.OK);
        },
      ),
      { numRuns: 60 },
    );
    expect(runs).toBe(60);
    expect(transport.dataPlane(0)!.stats.completed).toBeGreaterThanOrEqual(60);
  }, 60_000);
});
