import { closeSync, readSync, writeSync } from "node:fs";
import fc from "fast-check";
import { socketPair, waitReadable } from "@vmm/host-io";
import { afterEach, describe, expect, it } from "vitest";
import type { NetBackend } from "../src/backends/net-socket.js";
import { Status } from "../src/constants.js";
import { NetFeature, VirtioNet } from "../src/devices/net.js";
import { FrameInbox } from "../src/devices/net-frames.js";
import { RAM_BASE } from "./driver.js";
import { ALL_BUT, setupTransport, until } from "./harness.js";
import { closeMemfds, makeMemfdMemory } from "./memfd-ram.js";
import { randomRing } from "./random-rings.js";

// virtio-net's data-plane workers over a frame fd: a SOCK_SEQPACKET socket pair stands in for a tap (one message
// per frame, non-blocking), so the worker's transmit and input-driven receive run here without privileges.
const MAC = [0x52, 0x54, 0, 0, 0, 7] as const;
const RX = 0;
const TX = 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const frameOf = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);

/** A backend whose frame fd is one end of the pair; the test is the host on the other end. */
class FrameFdBackend implements NetBackend {
  readonly calls: string[] = [];
  readonly sent: Uint8Array[] = [];
  readonly fd: number;
  readonly peer: number;
  constructor() {
    [this.fd, this.peer] = socketPair({ seqpacket: true });
  }
  open(): void {}
  send(frame: Uint8Array): void {
    this.sent.push(frame);
  }
  pause(): void {
    this.calls.push("pause");
  }
  resume(): void {
    this.calls.push("resume");
  }
  frameFd() {
    return { fd: this.fd };
  }
  async close(): Promise<void> {
    closeSync(this.fd);
    closeSync(this.peer);
  }
  /** The next frame the guest sent, waiting up to a second. */
  nextSent(): Uint8Array {
    if (!waitReadable(this.peer, 1000)) throw new Error("no frame from the worker");
    const buf = new Uint8Array(70_000);
    return buf.slice(0, readSync(this.peer, buf));
  }
  inject(frame: Uint8Array): void {
    writeSync(this.peer, frame);
  }
  /** Throws away what waits on either end (frames left over from an earlier case). */
  drain(): void {
    const buf = new Uint8Array(70_000);
    for (const fd of [this.fd, this.peer]) while (waitReadable(fd, 0)) readSync(fd, buf);
  }
}

const open: Array<{ shutdown(): void; backend: FrameFdBackend }> = [];
afterEach(async () => {
  for (const r of open.splice(0)) {
    r.shutdown();
    await r.backend.close();
  }
  closeMemfds();
});

function rig(features?: (offered: bigint) => bigint) {
  const backend = new FrameFdBackend();
  const device = new VirtioNet(backend, MAC);
  const t = setupTransport(device, 4 << 20, makeMemfdMemory());
  open.push({ shutdown: () => t.transport.shutdown(), backend });
  t.driver.init(features ? { features } : {});
  const rxBufs = new Map<number, number>();
  return {
    ...t,
    device,
    backend,
    /** Posts `count` receive buffers of `size` bytes. */
    postRx(count: number, size = 2048) {
      for (let i = 0; i < count; i++) {
        const a = t.alloc.alloc(size);
        rxBufs.set(t.driver.rings[RX]!.post([{ addr: a, len: size, write: true }]), a);
      }
      t.driver.kick(RX);
    },
    /** The used receive entries with the bytes the device wrote. */
    takeRx() {
      return t.driver.rings[RX]!.takeUsed().map((u) => ({ ...u, bytes: t.mem.view(rxBufs.get(u.id)!, u.len).slice() }));
    },
    transmit(frame: Uint8Array) {
      const buf = t.alloc.alloc(12 + frame.length);
      t.mem.write(buf + 12, frame);
      t.driver.rings[TX]!.post([{ addr: buf, len: 12 }, { addr: buf + 12, len: frame.length }]);
    },
    lent: () => t.transport.dataPlane(RX)!.isLent && t.transport.dataPlane(TX)!.isLent,
  };
}

describe("FrameInbox (frames handed over with the receive queue)", () => {
  it("keeps frames in order over a shared buffer; take, untake, drain; refuses a full inbox and a frame over a slot", () => {
    const mine = new FrameInbox();
    const theirs = new FrameInbox(mine.buffer); // the other thread's view of the same memory
    expect(mine.put(frameOf(60, 1))).toBe(true);
    expect(mine.put(frameOf(1518, 2))).toBe(true);
    expect(mine.put(frameOf(1519, 3))).toBe(false);
    const into = new Uint8Array(FrameInbox.SLOT_BYTES);
    expect(theirs.take(into)).toBe(60);
    expect([...into.subarray(0, 60)]).toEqual([...frameOf(60, 1)]);
    theirs.untake();
    expect(theirs.waiting).toBe(2);
    expect(theirs.take(into)).toBe(60);
    expect(mine.drain().map((f) => f.length)).toEqual([1518]);
    expect(theirs.waiting).toBe(0);
    expect(theirs.take(into)).toBe(0);
    for (let i = 0; i < FrameInbox.SLOTS; i++) expect(mine.put(frameOf(60, i))).toBe(true);
    expect(mine.put(frameOf(60, 99))).toBe(false);
  });
});

describe("virtio-net data-plane workers over a frame fd (memfd-backed RAM, no KVM)", () => {
  it("transmit: each chain's frame goes to the fd from the worker, header stripped; the backend's send is never used", async () => {
    const r = rig();
    await until(r.lent);
    const frames = [frameOf(60, 1), frameOf(1514, 2), frameOf(14, 3)];
    for (const f of frames) r.transmit(f);
    r.driver.kick(TX);
    for (const f of frames) expect([...r.backend.nextSent()]).toEqual([...f]);
    await until(() => r.driver.rings[TX]!.usedIdx() === 3);
    expect(r.backend.sent).toEqual([]);
    expect(r.device.counters()).toMatchObject({ txFrames: 3, txDropped: 0 });
    expect(r.transport.dataPlane(TX)!.stats.completed).toBe(3);
  });

  it("receive: frames written to the fd land in posted buffers in order, with a zero header and num_buffers 1", async () => {
    const r = rig();
    r.postRx(4);
    await until(r.lent);
    expect(r.backend.calls.at(-1)).toBe("pause"); // the JS thread leaves the fd to the worker
    const frames = [frameOf(60, 4), frameOf(1518, 5), frameOf(100, 6)];
    for (const f of frames) r.backend.inject(f);
    await until(() => r.driver.rings[RX]!.usedIdx() === 3);
    const got = r.takeRx();
    expect(got.map((u) => u.len)).toEqual(frames.map((f) => 12 + f.length));
    for (const [i, u] of got.entries()) {
      expect([...u.bytes.subarray(0, 12)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
      expect([...u.bytes.subarray(12)]).toEqual([...frames[i]!]);
    }
    expect(r.device.counters()).toMatchObject({ rxFrames: 3, rxDropped: 0 });
    await until(() => r.sink.raises > 0); // INTx (MSI-X is off): the worker hands the interrupt to the JS thread
  });

  it("with no receive buffers the frames wait in the fd's queue, and arrive in order once buffers are posted", async () => {
    const r = rig();
    await until(r.lent);
    const frames = [1, 2, 3, 4, 5].map((s) => frameOf(64 + s, s));
    for (const f of frames) r.backend.inject(f);
    await sleep(50);
    expect(r.driver.rings[RX]!.usedIdx()).toBe(0);
    r.postRx(2);
    await until(() => r.driver.rings[RX]!.usedIdx() === 2);
    await sleep(20);
    expect(r.driver.rings[RX]!.usedIdx()).toBe(2); // two buffers, two frames: the rest still wait
    r.postRx(3);
    await until(() => r.driver.rings[RX]!.usedIdx() === 5);
    expect(r.takeRx().map((u) => [...u.bytes.subarray(12)])).toEqual(frames.map((f) => [...f]));
    expect(r.device.counters()).toMatchObject({ rxFrames: 5, rxDropped: 0 });
  });

  it("mergeable buffers: a frame spans several small buffers with num_buffers set", async () => {
    const r = rig();
    r.postRx(4, 512);
    await until(r.lent);
    const frame = frameOf(1500, 9);
    r.backend.inject(frame);
    await until(() => r.driver.rings[RX]!.usedIdx() === 3);
    const got = r.takeRx();
    expect(got.map((u) => u.len)).toEqual([512, 512, 12 + 1500 - 1024]);
    expect(got[0]!.bytes[10]).toBe(3); // num_buffers
    const joined = new Uint8Array(12 + 1500);
    let at = 0;
    for (const u of got) {
      joined.set(u.bytes, at);
      at += u.len;
    }
    expect([...joined.subarray(12)]).toEqual([...frame]);
  });

  it("without mergeable buffers a frame larger than the buffer is dropped (buffer kept), and one over the MTU too; both counted", async () => {
    const r = rig((f) => ALL_BUT(f, NetFeature.MRG_RXBUF));
    r.postRx(1, 512);
    await until(r.lent);
    r.backend.inject(frameOf(1000, 1)); // fits no 512-byte buffer
    r.backend.inject(frameOf(1600, 2)); // over 1518 without receive offloads
    r.backend.inject(frameOf(200, 3));
    await until(() => r.driver.rings[RX]!.usedIdx() === 1);
    const [u] = r.takeRx();
    expect(u!.len).toBe(12 + 200);
    expect([...u!.bytes.subarray(12)]).toEqual([...frameOf(200, 3)]);
    expect(r.device.counters()).toMatchObject({ rxFrames: 1, rxDropped: 2, rxOversized: 1 });
  });

  it("Bus Master Enable off hands the queues back and resumes the backend for the JS thread; on again the workers serve the fd", async () => {
    const r = rig();
    r.postRx(2);
    await until(r.lent);
    r.transport.setBusMaster(false);
    expect(r.transport.dataPlane(RX)!.isLent).toBe(false);
    expect(r.backend.calls.at(-1)).toBe("resume");
    r.transport.setBusMaster(true);
    expect(r.lent()).toBe(true);
    expect(r.backend.calls.at(-1)).toBe("pause");
    r.backend.inject(frameOf(80, 7));
    r.transmit(frameOf(70, 8));
    r.driver.kick(TX);
    expect([...r.backend.nextSent()]).toEqual([...frameOf(70, 8)]);
    await until(() => r.driver.rings[RX]!.usedIdx() === 1);
    expect([...r.takeRx()[0]!.bytes.subarray(12)]).toEqual([...frameOf(80, 7)]);
  });

  it("hostile rings on either queue never stop the workers: after a reset frames flow both ways again", async () => {
    const r = rig();
    const { driver, mem, backend } = r;
    const broken = () => (driver.status() & Status.DEVICE_NEEDS_RESET) !== 0;
    /** Resets the device, throws away stale frames, sets up both queues with 8 entries. */
    const reinit = () => {
      driver.w(0x14, 1, 0);
      backend.drain();
      driver.rings.length = 0;
      expect(driver.init({ queueSizes: [8, 8] })).toBe(true);
    };
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(...randomRing, fc.boolean(), async (descs, heads, noise, availIdx, onTx) => {
        runs++;
        reinit();
        const ring = driver.rings[onTx ? TX : RX]!;
        mem.write(RAM_BASE + 0x6000, noise);
        descs.forEach((d, i) => ring.writeDesc(i, d.addr, d.len, d.flags, d.next));
        heads.forEach((h) => ring.publish(h));
        const published = Math.max(heads.length, availIdx);
        if (availIdx > heads.length) ring.setAvailIdx(availIdx);
        if (!onTx) for (let i = 0; i < published; i++) backend.inject(frameOf(60 + i * 97, i));
        driver.kick(onTx ? TX : RX);
        // A chain the frames never fit stays posted (receive waits for room), so the wait is bounded, not required.
        await until(() => broken() || ring.usedIdx() === published, 150).catch(() => {});
        expect(ring.usedIdx()).toBeLessThanOrEqual(published);
        if (!broken()) for (const u of ring.takeUsed()) expect(u.id).toBeLessThan(8);
        // The workers serve a well-formed driver after a reset.
        reinit();
        await until(r.lent);
        const rx = driver.rings[RX]!;
        const buf = driver.alloc.alloc(2048);
        const head = rx.post([{ addr: buf, len: 2048, write: true }]);
        driver.kick(RX);
        backend.inject(frameOf(90, runs));
        await until(() => rx.usedIdx() === 1);
        expect(rx.takeUsed()).toEqual([{ id: head, len: 12 + 90 }]);
        expect([...mem.view(buf + 12, 90)]).toEqual([...frameOf(90, runs)]);
        r.transmit(frameOf(70, runs));
        driver.kick(TX);
        expect([...backend.nextSent()]).toEqual([...frameOf(70, runs)]);
      }),
      { numRuns: 40 },
    );
    expect(runs).toBe(40);
    expect(r.transport.dataPlane(RX)!.alive && r.transport.dataPlane(TX)!.alive).toBe(true);
  }, 60_000);

  it("a frame the worker read but had no room for goes back to the device when the queue is taken back, and to the worker again, in order", async () => {
    const r = rig();
    r.postRx(1, 512); // mergeable buffers, but too little room for what comes
    await until(r.lent);
    r.backend.inject(frameOf(1500, 1));
    await until(() => !waitReadable(r.backend.fd, 0)); // the worker read it, and holds it waiting for more buffers
    r.backend.inject(frameOf(100, 2));
    await sleep(20);
    expect(r.driver.rings[RX]!.usedIdx()).toBe(0);
    await r.transport.quiesce();
    expect(r.device.counters()).toMatchObject({ rxPending: 1, rxDropped: 0 }); // handed back, not lost
    r.transport.resume();
    await until(r.lent);
    r.postRx(4, 512);
    await until(() => r.driver.rings[RX]!.usedIdx() === 4);
    const got = r.takeRx();
    expect(got.map((u) => u.len)).toEqual([512, 512, 12 + 1500 - 1024, 12 + 100]);
    expect([...got[3]!.bytes.subarray(12)]).toEqual([...frameOf(100, 2)]);
    expect(r.device.counters()).toMatchObject({ rxFrames: 2, rxDropped: 0, rxPending: 0 });
  });

  it("dataplane=main keeps both queues on the JS thread", () => {
    const backend = new FrameFdBackend();
    const device = new VirtioNet(backend, MAC, { dataplane: "main" });
    const t = setupTransport(device, 4 << 20, makeMemfdMemory());
    open.push({ shutdown: () => t.transport.shutdown(), backend });
    expect(t.transport.dataPlane(RX)).toBeUndefined();
    expect(t.transport.dataPlane(TX)).toBeUndefined();
  });
});
