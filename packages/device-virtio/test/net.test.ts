import { connect } from "node:net";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bit } from "../src/constants.js";
import { encodeFrame, FrameDecoder, type NetBackend, SocketNetBackend } from "../src/backends/net-socket.js";
import { MAX_ETHERNET_FRAME, NetFeature, parseMac, VirtioNet } from "../src/devices/net.js";
import { ALL_BUT, setupTransport, until } from "./harness.js";
import { pciMachine } from "./pci-machine.js";
import { tempDirEach } from "./temp-dir.js";

const MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56] as const;
const frameOf = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i + seed) & 0xff);

class LoopbackBackend implements NetBackend {
  sent: Uint8Array[] = [];
  private receive: ((f: Uint8Array) => void) | undefined;
  open(receive: (f: Uint8Array) => void) {
    this.receive = receive;
  }
  send(frame: Uint8Array) {
    this.sent.push(frame);
  }
  inject(frame: Uint8Array) {
    this.receive!(frame);
  }
  async close() {}
}

class PausableBackend extends LoopbackBackend {
  paused = false;
  pause() {
    this.paused = true;
  }
  resume() {
    this.paused = false;
  }
}

/** Congested once `limit` frames were sent, until the test says it drained; counts like a real backend. */
class CongestibleBackend extends LoopbackBackend {
  limit = Infinity;
  private writable: (() => void) | undefined;
  override open(receive: (f: Uint8Array) => void, writable?: () => void) {
    super.open(receive);
    this.writable = writable;
  }
  congested() {
    return this.sent.length >= this.limit;
  }
  drained() {
    this.writable?.();
  }
  counters() {
    return { backendTxDropped: 7 };
  }
}

function vm(backend: NetBackend, features?: (f: bigint) => bigint) {
  const device = new VirtioNet(backend, MAC);
  const t = setupTransport(device);
  expect(t.driver.init(features ? { features } : {})).toBe(true);
  return { ...t, device, rx: t.driver.rings[0]!, tx: t.driver.rings[1]! };
}

function transmit(v: ReturnType<typeof vm>, frame: Uint8Array) {
  const buf = v.alloc.alloc(12 + frame.length);
  v.mem.write(buf + 12, frame);
  v.tx.post([{ addr: buf, len: 12 }, { addr: buf + 12, len: frame.length }]);
  v.driver.kick(1);
}

function postRx(v: ReturnType<typeof vm>, size: number, count = 1) {
  const addrs: number[] = [];
  for (let i = 0; i < count; i++) {
    const a = v.alloc.alloc(size);
    addrs.push(a);
    v.rx.post([{ addr: a, len: size, write: true }]);
  }
  v.driver.kick(0);
  return addrs;
}

describe("virtio-net device model", () => {
  it("shows the MAC and link-up status in its configuration", () => {
    const v = vm(new LoopbackBackend());
    expect([0, 1, 2, 3, 4, 5].map((i) => v.driver.config(i, 1))).toEqual([...MAC]);
    expect(v.driver.config(6, 2)).toBe(1);
    expect(v.transport.offered & bit(NetFeature.MAC)).toBeTruthy();
  });

  it("strips the virtio_net_hdr on transmit", () => {
    const b = new LoopbackBackend();
    const v = vm(b);
    transmit(v, frameOf(60, 1));
    expect(b.sent.map((f) => [...f])).toEqual([[...frameOf(60, 1)]]);
    expect(v.tx.takeUsed()).toEqual([{ id: 0, len: 0 }]);
  });

  it("receives into one buffer with a zero header and num_buffers 1", () => {
    const b = new LoopbackBackend();
    const v = vm(b);
    const [buf] = postRx(v, 2048);
    b.inject(frameOf(100, 3));
    expect(v.rx.takeUsed()).toEqual([{ id: 0, len: 112 }]);
    expect([...v.mem.view(buf!, 10)]).toEqual(new Array(10).fill(0));
    expect(v.mem.readU16(buf! + 10)).toBe(1);
    expect([...v.mem.view(buf! + 12, 100)]).toEqual([...frameOf(100, 3)]);
    expect(v.sink.level).toBe(true);
  });

  it("spreads a full-size frame over mergeable buffers and counts them in num_buffers", () => {
    const b = new LoopbackBackend();
    const v = vm(b);
    const bufs = postRx(v, 512, 4);
    b.inject(frameOf(MAX_ETHERNET_FRAME, 9));
    const used = v.rx.takeUsed();
    expect(used.map((u) => u.len)).toEqual([512, 512, 12 + MAX_ETHERNET_FRAME - 1024]);
    expect(v.mem.readU16(bufs[0]! + 10)).toBe(3);
    const got = new Uint8Array(12 + MAX_ETHERNET_FRAME);
    bufs.slice(0, 3).forEach((a, i) => got.set(v.mem.view(a, used[i]!.len), i * 512));
    expect([...got.subarray(12)]).toEqual([...frameOf(MAX_ETHERNET_FRAME, 9)]);
  });

  it.each([
    ["with mergeable buffers", (f: bigint) => f],
    ["without mergeable buffers", (f: bigint) => ALL_BUT(f, NetFeature.MRG_RXBUF)],
  ])("%s and no guest GSO, drops and counts a frame over 1518 bytes; the next frame is delivered", (_n, features) => {
    const b = new LoopbackBackend();
    const v = vm(b, features);
    expect(v.transport.offered & (bit(NetFeature.GUEST_TSO4) | bit(NetFeature.GUEST_TSO6) | bit(NetFeature.GUEST_UFO))).toBe(0n);
    const [buf] = postRx(v, 65536 + 64, 2);
    b.inject(frameOf(MAX_ETHERNET_FRAME + 1, 1));
    b.inject(frameOf(60000, 2));
    expect(v.rx.usedIdx()).toBe(0);
    expect([v.device.rxDropped, v.device.rxOversized]).toEqual([2, 2]);
    expect(v.logger.lines.join("\n")).toMatch(/1519-byte frame over the driver's 1518/);
    b.inject(frameOf(MAX_ETHERNET_FRAME, 3));
    expect(v.rx.takeUsed()).toEqual([{ id: 0, len: 12 + MAX_ETHERNET_FRAME }]);
    expect([...v.mem.view(buf! + 12, MAX_ETHERNET_FRAME)]).toEqual([...frameOf(MAX_ETHERNET_FRAME, 3)]);
  });

  it("with mergeable buffers drops a frame the whole ring cannot hold instead of waiting forever", () => {
    const b = new LoopbackBackend();
    const device = new VirtioNet(b, MAC);
    const t = setupTransport(device);
    expect(t.driver.init({ queueSizes: [8, 8] })).toBe(true);
    const v = { ...t, device, rx: t.driver.rings[0]!, tx: t.driver.rings[1]! };
    postRx(v, 64, 4);
    b.inject(frameOf(400, 1)); // 412 bytes > 4 x 64: the driver may still post more, so the frame waits
    expect(v.rx.usedIdx()).toBe(0);
    postRx(v, 64, 4); // now the ring is full (8 x 64 = 512) and the frame fits
    expect(v.rx.takeUsed().map((u) => u.len)).toEqual([64, 64, 64, 64, 64, 64, 28]);
    postRx(v, 64, 7); // 8 buffers again, the whole ring, 512 bytes
    b.inject(frameOf(1000, 2)); // can never fit: every descriptor is already posted
    expect(v.rx.usedIdx()).toBe(7);
    expect(v.device.rxDropped).toBe(1);
    expect(v.device.rxOversized).toBe(0);
    b.inject(frameOf(100, 3)); // the next frame is delivered into the buffers the dropped one could not use
    expect(v.rx.takeUsed().map((u) => u.len)).toEqual([64, 48]);
  });

  it("a reset drops the receive backlog and resumes a paused backend; the new driver gets only new frames", () => {
    const b = new PausableBackend();
    const v = vm(b);
    b.inject(frameOf(50, 1));
    b.inject(frameOf(51, 2));
    expect(b.paused).toBe(true);
    v.driver.rings.length = 0;
    expect(v.driver.init()).toBe(true); // status 0 first: a reset
    expect(b.paused).toBe(false);
    expect(v.device.rxDropped).toBe(2);
    const rx = v.driver.rings[0]!;
    const a = v.alloc.alloc(2048);
    rx.post([{ addr: a, len: 2048, write: true }]);
    v.driver.kick(0);
    expect(rx.usedIdx()).toBe(0);
    b.inject(frameOf(52, 3));
    expect(rx.takeUsed()).toEqual([{ id: 0, len: 64 }]);
    expect([...v.mem.view(a + 12, 52)]).toEqual([...frameOf(52, 3)]);
  });

  it("keeps frames until the guest posts buffers, then delivers them in order", () => {
    const b = new LoopbackBackend();
    const v = vm(b);
    b.inject(frameOf(50, 1));
    b.inject(frameOf(51, 2));
    expect(v.rx.usedIdx()).toBe(0);
    postRx(v, 2048, 2);
    expect(v.rx.takeUsed().map((u) => u.len)).toEqual([62, 63]);
  });

  it("without mergeable buffers drops a frame bigger than the buffer and keeps the buffer", () => {
    const b = new LoopbackBackend();
    const v = vm(b, (f) => ALL_BUT(f, NetFeature.MRG_RXBUF));
    postRx(v, 256);
    b.inject(frameOf(1000, 1));
    expect(v.rx.usedIdx()).toBe(0);
    expect(v.device.rxDropped).toBe(1);
    b.inject(frameOf(100, 1));
    expect(v.rx.takeUsed()).toEqual([{ id: 0, len: 112 }]);
  });

  it("leaves transmit chains in the ring while the backend is congested and sends them when it is writable again", () => {
    const backend = new CongestibleBackend();
    const v = vm(backend);
    backend.limit = 1;
    for (let i = 0; i < 3; i++) transmit(v, frameOf(60, i));
    expect(backend.sent.length).toBe(1);
    expect(v.tx.usedIdx()).toBe(1);
    backend.limit = Infinity;
    backend.drained();
    expect(backend.sent.map((f) => f[0])).toEqual([0, 1, 2]);
    expect(v.tx.usedIdx()).toBe(3);
  });

  it("counts frames sent, dropped and waiting, with the backend's own counters", () => {
    const backend = new CongestibleBackend();
    const v = vm(backend);
    transmit(v, frameOf(60, 1));
    backend.inject(frameOf(60, 2)); // no receive buffers yet: it waits
    expect(v.device.counters()).toEqual({ txFrames: 1, txDropped: 0, rxFrames: 0, rxDropped: 0, rxOversized: 0, rxPending: 1, backendTxDropped: 7 });
    v.rx.post([{ addr: v.alloc.alloc(2048), len: 2048, write: true }]);
    v.driver.kick(0);
    expect(v.device.counters()).toMatchObject({ rxFrames: 1, rxPending: 0 });
    // The PCI function reports the device's counters (vmm run --stats); this RAM has no data-plane workers.
    expect(pciMachine(new VirtioNet(new CongestibleBackend(), MAC)).fn.counters()).toEqual({ txFrames: 0, txDropped: 0, rxFrames: 0, rxDropped: 0, rxOversized: 0, rxPending: 0, backendTxDropped: 7 });
  });

  it("parses MAC addresses and refuses multicast or malformed ones", () => {
    expect(parseMac("52:54:00:AB:cd:01")).toEqual([0x52, 0x54, 0, 0xab, 0xcd, 1]);
    expect(parseMac("01:00:5e:00:00:01")).toBeUndefined();
    expect(parseMac("52:54:00:ab:cd")).toBeUndefined();
  });

  it("frames a byte stream by 32-bit big-endian lengths and refuses absurd lengths", () => {
    const frames: number[] = [];
    const bad: number[] = [];
    const d = new FrameDecoder((f) => frames.push(f.length), (l) => bad.push(l));
    const stream = Buffer.concat([encodeFrame(frameOf(5, 0)), encodeFrame(frameOf(70, 0))]);
    d.push(stream.subarray(0, 3));
    d.push(stream.subarray(3, 40));
    d.push(stream.subarray(40));
    expect(frames).toEqual([5, 70]);
    d.push(Buffer.from([0x7f, 0xff, 0xff, 0xff]));
    expect(bad).toEqual([0x7fffffff]);
  });

  it("a paused decoder keeps the frames of chunks already read, and hands them on after resume (from a microtask)", async () => {
    const frames: number[] = [];
    const d = new FrameDecoder(
      (f) => {
        frames.push(f[0]!);
        if (frames.length === 2) d.pause(); // a receiver that runs out of room mid-chunk
      },
      () => {},
    );
    d.push(Buffer.concat([1, 2, 3, 4].map((i) => encodeFrame(frameOf(60, i)))));
    expect(frames).toEqual([1, 2]);
    d.push(encodeFrame(frameOf(60, 5)));
    expect(frames).toEqual([1, 2]);
    d.resume();
    expect(frames).toEqual([1, 2]);
    await Promise.resolve();
    expect(frames).toEqual([1, 2, 3, 4, 5]);
  });
});

describe("virtio-net socket backend: two VMs on one host", () => {
  const inDir = tempDirEach("vmm-net-");

  it("links two devices through a Unix socket (first listens, second connects) in both directions", async () => {
    const path = inDir("link.sock");
    const a = await SocketNetBackend.open(path);
    const b = await SocketNetBackend.open(path);
    expect([a.role, b.role]).toEqual(["listen", "connect"]);
    const vmA = vm(a);
    const vmB = vm(b);
    await until(() => a.connected && b.connected);
    const [bufB] = postRx(vmB, 2048);
    const [bufA] = postRx(vmA, 2048);
    transmit(vmA, frameOf(1500, 4));
    await until(() => vmB.rx.usedIdx() === 1);
    expect([...vmB.mem.view(bufB! + 12, 1500)]).toEqual([...frameOf(1500, 4)]);
    transmit(vmB, frameOf(64, 8));
    await until(() => vmA.rx.usedIdx() === 1);
    expect([...vmA.mem.view(bufA! + 12, 64)]).toEqual([...frameOf(64, 8)]);
    await b.close();
    await a.close();
  });

  it("pause stops reading the peer (its frames wait in the socket); resume delivers them", async () => {
    const path = inDir("pause.sock");
    const a = await SocketNetBackend.open(path, "listen");
    const got: number[] = [];
    a.open((f) => got.push(f[0]!));
    const peer = connect(path);
    await until(() => a.connected);
    a.pause();
    peer.write(encodeFrame(frameOf(60, 1)));
    await new Promise((r) => setTimeout(r, 50));
    expect(got).toEqual([]);
    a.resume();
    await until(() => got.length === 1);
    expect(got).toEqual([1]);
    peer.destroy();
    await a.close();
  });

  it("one chunk of a thousand small frames while the guest has no buffers: one waits in the device, the rest in the backend, none dropped", async () => {
    const path = inDir("burst.sock");
    const a = await SocketNetBackend.open(path, "listen");
    const v = vm(a);
    const peer = connect(path);
    await until(() => a.connected);
    peer.write(Buffer.concat(Array.from({ length: 1000 }, (_, i) => encodeFrame(frameOf(60, i)))));
    await until(() => v.device.rxPending === 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(v.device.counters()).toMatchObject({ rxPending: 1, rxDropped: 0 }); // the backend paused at once
    const bufs = Array.from({ length: 256 }, () => v.alloc.alloc(2048));
    const firstBytes: number[] = [];
    while (firstBytes.length < 1000) {
      const heads = new Map(bufs.map((a) => [v.rx.post([{ addr: a, len: 2048, write: true }]), a]));
      v.driver.kick(0);
      const want = Math.min(256, 1000 - firstBytes.length);
      const used: { id: number; len: number }[] = [];
      await until(() => used.push(...v.rx.takeUsed()) >= want);
      for (const u of used) firstBytes.push(v.mem.readU8(heads.get(u.id)! + 12));
    }
    expect(firstBytes).toEqual(Array.from({ length: 1000 }, (_, i) => frameOf(60, i)[0]));
    expect(v.device.counters()).toMatchObject({ rxFrames: 1000, rxDropped: 0, rxPending: 0 });
    peer.destroy();
    await a.close();
  });

  it("is congested while a peer that does not read leaves frames in this process, and calls writable when it drained", async () => {
    const path = inDir("slow.sock");
    const a = await SocketNetBackend.open(path, "listen");
    let writable = 0;
    a.open(() => {}, () => writable++);
    const peer = connect(path);
    peer.pause(); // reads nothing: the kernel's buffers fill, then Node's
    await until(() => a.connected);
    let sent = 0;
    while (!a.congested() && sent < 10_000) {
      a.send(frameOf(60_000, sent));
      sent++;
      await new Promise((r) => setImmediate(r));
    }
    expect(a.congested()).toBe(true);
    expect(writable).toBe(0);
    peer.resume();
    await until(() => writable > 0);
    expect(a.congested()).toBe(false);
    peer.destroy();
    await a.close();
  });

  it("drops frames while no peer is connected and reports a refused explicit connect", async () => {
    const path = inDir("lonely.sock");
    const a = await SocketNetBackend.open(path, "listen");
    a.send(frameOf(60, 0));
    expect(a.dropped).toBe(1);
    await a.close();
    await expect(SocketNetBackend.open(inDir("nobody.sock"), "connect")).rejects.toThrow(/cannot connect \(ENOENT\)/);
  });
});
