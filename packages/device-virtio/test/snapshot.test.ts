import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import fc from "fast-check";
import { type DeviceState, SnapshotError, type StateValue } from "@vmm/core";
import { StreamChannel } from "../src/backends/channel.js";
import { MemoryBlockBackend } from "../src/backends/block.js";
import { SocketNetBackend } from "../src/backends/net-socket.js";
import { Status } from "../src/constants.js";
import { BlkType, VirtioBlk } from "../src/devices/blk.js";
import { VirtioConsole } from "../src/devices/console.js";
import { VirtioNet } from "../src/devices/net.js";
import { VirtioRng } from "../src/devices/rng.js";
import { until } from "./harness.js";
import { pciMachine } from "./pci-machine.js";
import { bootGuest, type Guest, messageOf, MOVED_BAR1, paths, replaceAt, restoreInto, ring, throughJson, valueAt } from "./snapshot-rig.js";
import { tempDirEach } from "./temp-dir.js";

const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
const ramOf = (g: Guest) => g.m.memory.list().map((r) => Buffer.from(r.bytes).toString("base64"));
const tick = () => new Promise((r) => setImmediate(r));

/** A disk whose reads wait while `gate` is closed: a request that stays in flight as long as the test wants. */
class GatedDisk extends MemoryBlockBackend {
  private open = true;
  private waiting: Array<() => void> = [];
  close_(): void {
    this.open = false;
  }
  release(): void {
    this.open = true;
    for (const w of this.waiting.splice(0)) w();
  }
  override async read(buffer: Uint8Array, position: number): Promise<void> {
    if (!this.open) await new Promise<void>((r) => this.waiting.push(r));
    return super.read(buffer, position);
  }
}

/** Posts a virtio-blk request (header, data, status) and returns its head. */
function blkRequest(g: Guest, type: number, sector: number, length: number, data?: Uint8Array): number {
  const mem = g.m.memory;
  const hdr = g.driver.alloc.alloc(16);
  mem.writeU32(hdr, type);
  mem.writeU64(hdr + 8, BigInt(sector));
  const buf = g.driver.alloc.alloc(length);
  if (data) mem.write(buf, data);
  const status = g.driver.alloc.alloc(1);
  mem.writeU8(status, 0xff);
  return g.driver.rings[0]!.post([{ addr: hdr, len: 16 }, { addr: buf, len: length, write: type === BlkType.IN }, { addr: status, len: 1, write: true }]);
}

describe("virtio snapshots: a restored device continues exactly like the uninterrupted one", () => {
  it("virtio-blk: completed, in-flight and available-but-not-notified requests", async () => {
    const diskA = new GatedDisk(pattern(64 * 512, 3));
    const a = bootGuest(new VirtioBlk(diskA));
    const used = a.driver.rings[0]!;
    blkRequest(a, BlkType.OUT, 2, 512, pattern(512, 9));
    ring(a, 0);
    await until(() => used.usedIdx() === 1);
    blkRequest(a, BlkType.IN, 2, 512);
    ring(a, 0);
    await until(() => used.usedIdx() === 2);
    diskA.close_();
    const inflight = blkRequest(a, BlkType.IN, 5, 1024);
    ring(a, 0);
    expect((a.m.fn.virtioDevice as VirtioBlk).pendingRequests).toBe(1);
    const notified = blkRequest(a, BlkType.OUT, 7, 512, pattern(512, 11)); // available, doorbell not rung

    // Quiesce waits for the request in flight and publishes it (used ring and MSI-X) before resolving.
    let quiesced = false;
    const q = a.m.fn.quiesce().then(() => (quiesced = true));
    await tick();
    expect(quiesced).toBe(false);
    diskA.release();
    await q;
    expect(used.takeUsed().map((u) => u.id)).toEqual([0, 3, inflight]);
    expect(a.m.msis.at(-1)).toEqual(messageOf(1));
    expect(() => a.m.fn.saveState()).not.toThrow();

    const diskB = new MemoryBlockBackend(diskA.bytes.slice());
    const { b, msisBefore } = restoreInto(a, new VirtioBlk(diskB));
    expect(b.m.bar(1)).toBe(MOVED_BAR1);
    a.m.bus.resume();

    const continueRun = async (g: Guest) => {
      const r = g.driver.rings[0]!;
      const msis = g.m.msis.length;
      ring(g, 0); // serves the request made available before the snapshot, and only it
      await until(() => r.usedIdx() === 4);
      // The interrupt follows in the event loop's check phase (completions of one turn share it): wait for it,
      // or the next request's completion could share it on a busy host.
      await until(() => g.m.msis.length > msis);
      blkRequest(g, BlkType.IN, 7, 512);
      ring(g, 0);
      await until(() => r.usedIdx() === 5);
      await until(() => g.m.msis.length > msis + 1);
      return r.takeUsed();
    };
    const usedA = await continueRun(a);
    const usedB = await continueRun(b);
    expect(usedA).toEqual([{ id: notified, len: 1 }, { id: notified + 3, len: 513 }]);
    expect(usedB).toEqual(usedA);
    expect(ramOf(b)).toEqual(ramOf(a));
    expect(Buffer.from(diskB.bytes).equals(Buffer.from(diskA.bytes))).toBe(true);
    expect(b.m.msis).toEqual(a.m.msis.slice(msisBefore));
    expect(b.m.msis).toEqual([messageOf(1), messageOf(1)]);
  });

  it("virtio-rng: completed and available-but-not-notified requests", async () => {
    const a = bootGuest(new VirtioRng());
    const post = (g: Guest, n: number) => g.driver.rings[0]!.post([{ addr: g.driver.alloc.alloc(n), len: n, write: true }]);
    post(a, 16);
    post(a, 32);
    ring(a, 0);
    expect(a.driver.rings[0]!.takeUsed()).toEqual([{ id: 0, len: 16 }, { id: 1, len: 32 }]);
    post(a, 64);
    await a.m.fn.quiesce();
    const { b, msisBefore } = restoreInto(a, new VirtioRng());
    a.m.bus.resume();
    const continueRun = (g: Guest) => {
      ring(g, 0);
      post(g, 8);
      ring(g, 0);
      return g.driver.rings[0]!.takeUsed();
    };
    const usedA = continueRun(a);
    expect(usedA).toEqual([{ id: 2, len: 64 }, { id: 3, len: 8 }]);
    expect(continueRun(b)).toEqual(usedA);
    expect(b.m.msis).toEqual(a.m.msis.slice(msisBefore));
    expect(b.m.msis.length).toBe(2);
  });

  describe("virtio-net over the socket backend", () => {
    const inDir = tempDirEach("vmm-net-snapshot-");
    const closers: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const c of closers.splice(0)) await c();
    });

    /** A device on a socket link and the peer at the other end, recording what it receives. */
    async function link(name: string) {
      const path = inDir(`${name}.sock`);
      const backend = await SocketNetBackend.open(path, "listen");
      const peer = await SocketNetBackend.open(path, "connect");
      const received: string[] = [];
      peer.open((f) => received.push(Buffer.from(f).toString()));
      const device = new VirtioNet(backend, [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
      closers.push(() => device.close(), () => peer.close());
      return { device, peer, received };
    }

    it("frames received while quiesced are held in the state, not written to guest memory", async () => {
      const la = await link("a");
      const a = bootGuest(la.device);
      const [rx, tx] = a.driver.rings as [typeof a.driver.rings[0], typeof a.driver.rings[0]];
      const postRx = (g: Guest) => g.driver.rings[0]!.post([{ addr: g.driver.alloc.alloc(2048), len: 2048, write: true }]);
      const send = (g: Guest, text: string) => {
        const buf = g.driver.alloc.alloc(12 + text.length);
        g.m.memory.write(buf + 12, Buffer.from(text));
        g.driver.rings[1]!.post([{ addr: buf, len: 12 + text.length }]);
        ring(g, 1);
      };
      postRx(a);
      postRx(a);
      ring(a, 0);
      la.peer.send(Buffer.from("frame one"));
      await until(() => rx.usedIdx() === 1);
      send(a, "tx one");
      await until(() => la.received.length === 1);
      postRx(a); // posted, doorbell not rung

      await a.m.fn.quiesce();
      const usedBefore = rx.usedIdx();
      la.peer.send(Buffer.from("frame two (while paused)"));
      await until(() => la.device.rxPending === 1);
      expect(rx.usedIdx()).toBe(usedBefore); // held, not delivered

      const lb = await link("b");
      const { b, msisBefore } = restoreInto(a, lb.device);
      a.m.bus.resume();

      const continueRun = async (g: Guest, l: Awaited<ReturnType<typeof link>>) => {
        const r = g.driver.rings[0]!;
        await until(() => r.usedIdx() === 2); // the held frame lands once the device runs again
        ring(g, 0);
        send(g, "tx two");
        await until(() => l.received.length > 0 && l.received.at(-1) === "tx two");
        l.peer.send(Buffer.from("frame three"));
        await until(() => r.usedIdx() === 3);
        return { rx: r.takeUsed(), tx: g.driver.rings[1]!.takeUsed() };
      };
      const runA = await continueRun(a, la);
      const runB = await continueRun(b, lb);
      expect(runA.rx.map((u) => u.len)).toEqual([12 + 9, 12 + 24, 12 + 11]);
      expect(runB).toEqual(runA);
      expect(tx.usedIdx()).toBe(2);
      expect(ramOf(b)).toEqual(ramOf(a));
      expect(la.received).toEqual(["tx one", "tx two"]);
      expect(lb.received).toEqual(["tx two"]);
      expect(b.m.msis).toEqual(a.m.msis.slice(msisBefore));
    });
  });

  it("virtio-console: input held while quiesced, output and input after the restore", async () => {
    const chan = () => {
      const input = new PassThrough();
      const output = new PassThrough();
      const written: string[] = [];
      output.on("data", (d: Buffer) => written.push(d.toString()));
      return { input, written, device: new VirtioConsole(new StreamChannel(input, output)) };
    };
    const ca = chan();
    const a = bootGuest(ca.device);
    const postRx = (g: Guest) => g.driver.rings[0]!.post([{ addr: g.driver.alloc.alloc(16), len: 16, write: true }]);
    const send = (g: Guest, text: string) => {
      const buf = g.driver.alloc.alloc(text.length);
      g.m.memory.write(buf, Buffer.from(text));
      g.driver.rings[1]!.post([{ addr: buf, len: text.length }]);
      ring(g, 1);
    };
    postRx(a);
    postRx(a);
    ring(a, 0);
    ca.input.write("hello");
    await until(() => a.driver.rings[0]!.usedIdx() === 1);
    send(a, "out one");
    await a.m.fn.quiesce();
    ca.input.write("held");
    await until(() => ca.device.buffered === 4);
    expect(a.driver.rings[0]!.usedIdx()).toBe(1);
    await tick();
    const cb = chan();
    const { b, msisBefore } = restoreInto(a, cb.device);
    a.m.bus.resume();

    const continueRun = async (g: Guest, c: ReturnType<typeof chan>) => {
      const r = g.driver.rings[0]!;
      await until(() => r.usedIdx() === 2);
      send(g, "out two");
      postRx(g);
      ring(g, 0);
      c.input.write("more");
      await until(() => r.usedIdx() === 3);
      return { rx: r.takeUsed(), tx: g.driver.rings[1]!.takeUsed() };
    };
    const runA = await continueRun(a, ca);
    const runB = await continueRun(b, cb);
    expect(runA.rx).toEqual([{ id: 0, len: 5 }, { id: 1, len: 4 }, { id: 2, len: 4 }]);
    expect(runB).toEqual(runA);
    await until(() => cb.written.join("") === "out two");
    expect(ca.written.join("")).toBe("out oneout two");
    expect(ramOf(b)).toEqual(ramOf(a));
    expect(b.m.msis).toEqual(a.m.msis.slice(msisBefore));
  });
});

describe("virtio snapshots: refusals", () => {
  it("refuses a state of another device type, configuration or queue layout", () => {
    const blk = bootGuest(new VirtioBlk(new MemoryBlockBackend(new Uint8Array(64 * 512))));
    const state = throughJson(blk.m.fn.saveState());
    const rng = pciMachine(new VirtioRng());
    expect(() => rng.fn.restoreState(state)).toThrow(SnapshotError);
    const bigger = pciMachine(new VirtioBlk(new MemoryBlockBackend(new Uint8Array(128 * 512))));
    expect(() => bigger.fn.restoreState(state)).toThrow(/the saved device configuration differs/);
    const readonly = pciMachine(new VirtioBlk(new MemoryBlockBackend(new Uint8Array(64 * 512)), { readonly: true }));
    expect(() => readonly.fn.restoreState(state)).toThrow(/saved from virtio device type 2 with features/);
    // The transport alone: another type with the same queue count.
    const transportState = throughJson(bootGuest(new VirtioRng()).m.fn.transport.saveState());
    const console = pciMachine(new VirtioConsole(new StreamChannel(undefined, undefined)));
    expect(() => console.fn.transport.restoreState(transportState, true)).toThrow(/virtio-test: saved from virtio device type 4 .* this is type 3/);
  });

  it("refuses to save blk completions held back by a clear Bus Master Enable", async () => {
    const disk = new GatedDisk(new Uint8Array(64 * 512));
    const a = bootGuest(new VirtioBlk(disk));
    disk.close_();
    blkRequest(a, BlkType.IN, 0, 512);
    ring(a, 0);
    a.m.setBusMaster(false);
    const q = a.m.fn.quiesce();
    disk.release();
    await q;
    expect(() => a.m.bus.saveState()).toThrow(/virtio-test: 1 completions wait for Bus Master Enable/);
  });

  it("a driver that never set DRIVER_OK is restored as it was, and the status byte reads back", () => {
    const a = pciMachine(new VirtioRng());
    a.mmio.write(a.bar(1)! + 0x14, 1, Status.ACKNOWLEDGE | Status.DRIVER);
    const b = pciMachine(new VirtioRng());
    b.bus.restoreState(throughJson(a.bus.saveState()));
    expect(b.mmio.read(b.bar(1)! + 0x14, 1)).toBe(Status.ACKNOWLEDGE | Status.DRIVER);
  });
});

describe("virtio snapshot fuzzing", () => {
  it("restoring mutated state only ever throws SnapshotError, and the device keeps answering", () => {
    const a = bootGuest(new VirtioRng());
    a.driver.rings[0]!.post([{ addr: a.driver.alloc.alloc(16), len: 16, write: true }]);
    const saved = throughJson(a.m.bus.saveState()) as unknown as StateValue;
    const all = paths(saved);
    const mutation = fc.record({ at: fc.nat(all.length - 1), value: fc.oneof(fc.jsonValue(), fc.integer(), fc.constantFrom(0, 1, 0xffff, 0x1_0000, -1, 2 ** 32)) as fc.Arbitrary<StateValue> });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        let state = saved;
        for (const m of mutations) if (valueAt(state, all[m.at]!) !== undefined) state = replaceAt(state, all[m.at]!, m.value);
        const b = pciMachine(new VirtioRng());
        try {
          b.bus.restoreState(state as unknown as DeviceState);
        } catch (error) {
          if (!(error instanceof SnapshotError)) throw error;
        }
        const bar = b.bar(1);
        if (bar !== undefined) {
          b.mmio.read(bar + 0x14, 1);
          for (const e of b.ioevents.live()) e.notify();
        }
      }),
      { numRuns: 300 },
    );
  });
});
