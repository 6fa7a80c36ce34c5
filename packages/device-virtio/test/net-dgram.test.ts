import { closeSync, lstatSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { ConfigurationError, MemoryLogger } from "@vmm/core";
import { unixDgramBind } from "@vmm/host-io";
import { afterEach, describe, expect, it } from "vitest";
import { DgramNetBackend } from "../src/backends/net-dgram.js";
import { VirtioNet } from "../src/devices/net.js";
import { setupTransport, until } from "./harness.js";
import { closeMemfds, makeMemfdMemory } from "./memfd-ram.js";
import { createPluginDevice } from "./plugin-devices.js";
import { tempDirEach } from "./temp-dir.js";

const at = tempDirEach("vmm-dgram-");
const frameOf = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const closing: Array<{ close(): Promise<void> | void }> = [];
afterEach(async () => {
  for (const c of closing.splice(0).reverse()) await c.close();
  closeMemfds();
});

function open(local: string, remote: string, logger?: MemoryLogger): DgramNetBackend {
  const b = DgramNetBackend.open(at(local), at(remote), { logger, label: "net0" });
  closing.push(b);
  return b;
}

/** Opens `b` with a collecting receive callback. */
function collect(b: DgramNetBackend, writable?: () => void): Uint8Array[] {
  const got: Uint8Array[] = [];
  b.open((f) => got.push(f), writable);
  return got;
}

describe("virtio-net datagram backend (unix datagrams, one frame each)", () => {
  it("two backends that name each other's paths exchange frames both ways, message boundaries kept", async () => {
    const a = open("a.sock", "b.sock");
    const b = open("b.sock", "a.sock");
    const atA = collect(a);
    const atB = collect(b);
    a.send(frameOf(60, 1));
    a.send(frameOf(1514, 2));
    b.send(frameOf(70, 3));
    await until(() => atB.length === 2 && atA.length === 1);
    expect(atB.map((f) => [...f])).toEqual([[...frameOf(60, 1)], [...frameOf(1514, 2)]]);
    expect([...atA[0]!]).toEqual([...frameOf(70, 3)]);
    expect([a.txFrames, a.rxFrames, b.txFrames, b.rxFrames]).toEqual([2, 1, 1, 2]);
    expect(lstatSync(at("a.sock")).mode & 0o077).toBe(0);
  });

  it("drops (and counts, warning once) frames sent before the peer is bound, then reaches it once it is", async () => {
    const logger = new MemoryLogger();
    const a = open("a.sock", "b.sock", logger);
    collect(a);
    a.send(frameOf(60, 1));
    a.send(frameOf(60, 2));
    expect(a.txDropped).toBe(2);
    expect(logger.lines.filter((l) => l.includes("dropped a transmitted frame: nothing is bound at"))).toHaveLength(1);
    const b = open("b.sock", "a.sock");
    const atB = collect(b);
    a.send(frameOf(60, 3));
    await until(() => atB.length === 1);
    expect([...atB[0]!]).toEqual([...frameOf(60, 3)]);
  });

  it("reaches a peer that restarted (bound anew at the same path)", async () => {
    const a = open("a.sock", "b.sock");
    collect(a);
    const b1 = DgramNetBackend.open(at("b.sock"), at("a.sock"));
    const at1 = collect(b1);
    a.send(frameOf(60, 1));
    await until(() => at1.length === 1);
    await b1.close();
    const b2 = open("b.sock", "a.sock");
    const at2 = collect(b2);
    a.send(frameOf(60, 2)); // refused by the old peer's path: reconnects at once and sends
    await until(() => at2.length === 1);
    expect([...at2[0]!]).toEqual([...frameOf(60, 2)]);
  });

  it("a peer that does not read: the frame is held and `congested` says so until the peer reads, then `writable` is called", async () => {
    let writable = 0;
    const a = open("a.sock", "b.sock");
    collect(a, () => writable++);
    const b = open("b.sock", "a.sock");
    const atB = collect(b);
    b.pause();
    let sent = 0;
    while (!a.congested() && sent < 100_000) a.send(frameOf(1500, sent++));
    expect(a.congested()).toBe(true);
    expect(a.txDropped).toBe(0);
    b.resume();
    await until(() => writable === 1 && !a.congested());
    await until(() => atB.length === sent);
    expect([...atB.at(-1)!]).toEqual([...frameOf(1500, sent - 1)]); // the held frame went last, not lost
  });

  it("binds only where nothing is in the way: a file stays untouched, a live socket is refused, a stale one is replaced; close removes only its own", async () => {
    writeFileSync(at("file"), "keep");
    expect(() => open("file", "b.sock")).toThrow(ConfigurationError);
    expect(() => open("file", "b.sock")).toThrow(/something other than a socket is in the way/);
    expect(readFileSync(at("file"), "utf8")).toBe("keep");
    open("live.sock", "b.sock");
    expect(() => open("live.sock", "c.sock")).toThrow(/another process is bound to this socket/);
    closeSync(unixDgramBind(at("stale.sock"))); // a socket file nobody is bound to any more
    const s = open("stale.sock", "b.sock");
    expect(s.local).toBe(at("stale.sock"));
    expect(() => open("same.sock", "same.sock")).toThrow(/local and remote must be different paths/);
    // Closing removes its own socket file, but not one that replaced it meanwhile.
    const mine = DgramNetBackend.open(at("mine.sock"), at("b.sock"));
    await mine.close();
    expect(lstatSync(at("mine.sock"), { throwIfNoEntry: false })).toBeUndefined();
    const moved = DgramNetBackend.open(at("moved.sock"), at("b.sock"));
    renameSync(at("moved.sock"), at("elsewhere.sock"));
    writeFileSync(at("moved.sock"), "someone else's");
    await moved.close();
    expect(readFileSync(at("moved.sock"), "utf8")).toBe("someone else's");
  });

  it("the plugin selects it with backend=dgram,local=,remote=; local/remote elsewhere and a missing path are errors", async () => {
    const make = (raw: Record<string, unknown>) => createPluginDevice("virtio-net", raw, "net0");
    const fn = await make({ backend: "dgram", local: at("p.sock"), remote: at("q.sock") });
    closing.push(fn);
    expect((fn.virtioDevice as VirtioNet).backend).toBeInstanceOf(DgramNetBackend);
    await expect(make({ backend: "dgram", local: at("r.sock") })).rejects.toThrow(/backend=dgram needs local=<this VM's socket path> and remote=<the peer's>/);
    await expect(make({ backend: "tap", local: at("s.sock") })).rejects.toThrow(/net0: local applies only to backend=dgram/);
  });
});

describe("virtio-net data-plane workers over the datagram backend (memfd-backed RAM, no KVM)", () => {
  it("quiesce hands the queues back: frames arriving meanwhile are read into the saved backlog; restored, they are placed first and the workers go on", async () => {
    const backend = open("vm.sock", "host.sock");
    const host = open("host.sock", "vm.sock");
    collect(host);
    const device = new VirtioNet(backend, [0x52, 0x54, 0, 0, 0, 9]);
    const t = setupTransport(device, 4 << 20, makeMemfdMemory());
    closing.push({ close: () => t.transport.shutdown() });
    t.driver.init();
    const rx = t.driver.rings[0]!;
    const bufs = new Map<number, number>();
    const post = () => {
      const a = t.alloc.alloc(2048);
      bufs.set(rx.post([{ addr: a, len: 2048, write: true }]), a);
      t.driver.kick(0);
    };
    await until(() => t.transport.dataPlane(0)!.isLent);
    host.send(frameOf(80, 1));
    post();
    await until(() => rx.usedIdx() === 1);
    await t.transport.quiesce();
    expect(t.transport.dataPlane(0)!.isLent).toBe(false);
    host.send(frameOf(81, 2)); // read on the JS thread now, into the backlog (no guest memory while quiesced)
    host.send(frameOf(82, 3));
    await until(() => device.rxPending === 1); // one waits in the device, the backend paused for the rest
    const state = t.transport.saveState();
    expect(state).toBeDefined();
    t.driver.w(0x14, 1, 0);
    t.transport.restoreState(state, true);
    expect(t.transport.dataPlane(0)!.isLent).toBe(true);
    post();
    post();
    await until(() => rx.usedIdx() === 3);
    const got = rx.takeUsed().map((u) => [...t.mem.view(bufs.get(u.id)! + 12, u.len - 12)]);
    expect(got).toEqual([[...frameOf(80, 1)], [...frameOf(81, 2)], [...frameOf(82, 3)]]);
    // One drop: the reset before the restore dropped the live backlog (the restored one came from the snapshot).
    expect(device.counters()).toMatchObject({ rxFrames: 3, rxDropped: 1, rxPending: 0 });
  });

  it("the workers send to the peer and place its frames; a peer bound later is reached through a reconnect", async () => {
    const backend = open("vm.sock", "host.sock");
    const device = new VirtioNet(backend, [0x52, 0x54, 0, 0, 0, 9]);
    const t = setupTransport(device, 4 << 20, makeMemfdMemory());
    closing.push({ close: () => t.transport.shutdown() });
    t.driver.init();
    const lent = () => t.transport.dataPlane(0)!.isLent && t.transport.dataPlane(1)!.isLent;
    await until(lent);
    const transmit = (frame: Uint8Array) => {
      const buf = t.alloc.alloc(12 + frame.length);
      t.mem.write(buf + 12, frame);
      t.driver.rings[1]!.post([{ addr: buf, len: 12 + frame.length }]);
      t.driver.kick(1);
    };
    transmit(frameOf(60, 1)); // nobody at host.sock yet: dropped, counted
    await until(() => t.driver.rings[1]!.usedIdx() === 1);
    expect(device.counters()).toMatchObject({ txFrames: 0, txDropped: 1 });
    const host = open("host.sock", "vm.sock");
    const atHost = collect(host);
    transmit(frameOf(1514, 2));
    await until(() => atHost.length === 1);
    expect([...atHost[0]!]).toEqual([...frameOf(1514, 2)]);
    const rxBuf = t.alloc.alloc(2048);
    t.driver.rings[0]!.post([{ addr: rxBuf, len: 2048, write: true }]);
    t.driver.kick(0);
    host.send(frameOf(100, 3));
    await until(() => t.driver.rings[0]!.usedIdx() === 1);
    expect([...t.mem.view(rxBuf + 12, 100)]).toEqual([...frameOf(100, 3)]);
    expect(device.counters()).toMatchObject({ txFrames: 1, txDropped: 1, rxFrames: 1 });
    expect(t.transport.dataPlane(0)!.stats.completed).toBe(1);
    expect(backend.txFrames + backend.rxFrames).toBe(0); // the JS thread's backend moved nothing
  });
});
