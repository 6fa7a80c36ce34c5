import { closeSync, ftruncateSync, lstatSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { Worker } from "node:worker_threads";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  bufferAddress,
  HostIoError,
  ioctl,
  ioctlValue,
  mapFd,
  memfdCreate,
  recvFds,
  sendFds,
  unixAccept,
  unixConnect,
  unixDgramBind,
  unixDgramConnect,
  unixListen,
  readMessage,
  socketPair,
  viewMapping,
  waitAnyReadable,
  waitReadable,
  waitWritable,
  writeMessage,
} from "../src/index.js";
import { packageRoot } from "../src/native.js";

const open: number[] = [];
const track = (fd: number): number => {
  open.push(fd);
  return fd;
};
afterEach(() => {
  for (const fd of open.splice(0)) closeSync(fd);
});

describe("mapFd", () => {
  it("maps a memfd shared: writes through the view reach the file and the file's writes reach the view", () => {
    const fd = track(memfdCreate("map-test"));
    ftruncateSync(fd, 3 * 4096);
    const view = mapFd(fd, 4096, 8192, { writable: true });
    expect(view.length).toBe(8192);
    view[5] = 0xab;
    const back = new Uint8Array(1);
    readSync(fd, back, 0, 1, 4096 + 5);
    expect(back[0]).toBe(0xab);
    writeSync(fd, Uint8Array.of(0x5a), 0, 1, 4096 + 8191);
    expect(view[8191]).toBe(0x5a);
  });

  it("maps read-only unless asked: the fd opened read-only maps, a writable map of it is refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "hostio-map-"));
    try {
      const path = join(dir, "file");
      writeFileSync(path, new Uint8Array(4096).fill(7));
      const fd = track(openSync(path, "r"));
      expect(mapFd(fd, 0, 4096)[100]).toBe(7);
      expect(() => mapFd(fd, 0, 4096, { writable: true })).toThrow(HostIoError);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("refuses unaligned offsets and empty lengths before calling mmap", () => {
    const fd = track(memfdCreate("map-bad"));
    ftruncateSync(fd, 4096);
    expect(() => mapFd(fd, 100, 4096)).toThrow(/multiple of 4096/);
    expect(() => mapFd(fd, 0, 0)).toThrow(/positive/);
    expect(() => mapFd(-1, 0, 4096)).toThrow();
  });

  it("two mappings of one file see each other (another process's view works the same way)", () => {
    const fd = track(memfdCreate("map-two"));
    ftruncateSync(fd, 4096);
    const a = mapFd(fd, 0, 4096, { writable: true });
    const b = mapFd(fd, 0, 4096, { writable: true });
    a[42] = 42;
    expect(b[42]).toBe(42);
    expect(bufferAddress(a)).not.toBe(bufferAddress(b));
    expect(bufferAddress(a) % 4096n).toBe(0n);
    expect(bufferAddress(a.subarray(10))).toBe(bufferAddress(a) + 10n);
  });
});

describe("viewMapping", () => {
  const WORKER = `
const { workerData } = require("node:worker_threads");
const native = require(require.resolve("node-gyp-build", { paths: [workerData.root] }))(workerData.root);
const view = new Uint8Array(native.viewMapping(workerData.address, workerData.length));
for (let i = 0; i < view.length; i += 4096) view[i] = (i / 4096 + 1) & 0xff;
`;

  it("views the same pages as an existing mapping: writes through either reach the other", () => {
    const fd = track(memfdCreate("view-test"));
    ftruncateSync(fd, 4 * 4096);
    const owner = mapFd(fd, 0, 4 * 4096, { writable: true });
    const view = viewMapping(bufferAddress(owner), owner.length);
    expect(view.length).toBe(4 * 4096);
    owner[100] = 0x3c;
    expect(view[100]).toBe(0x3c);
    view[3 * 4096 + 7] = 0xc3;
    expect(owner[3 * 4096 + 7]).toBe(0xc3);
  });

  it("gives a worker thread the main thread's mapping itself, not a copy", async () => {
    const fd = track(memfdCreate("view-worker"));
    ftruncateSync(fd, 8 * 4096);
    const owner = mapFd(fd, 0, 8 * 4096, { writable: true });
    const w = new Worker(WORKER, { eval: true, workerData: { root: packageRoot, address: bufferAddress(owner), length: owner.length } });
    await new Promise<void>((resolve, reject) => {
      w.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`worker exited ${code}`))));
      w.once("error", reject);
    });
    expect(Array.from({ length: 8 }, (_, page) => owner[page * 4096])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("refuses a bad range before touching memory, and a range that is not mapped with ENOMEM", () => {
    expect(() => viewMapping(4096n, 0)).toThrow(RangeError);
    expect(() => viewMapping(4097n, 4096)).toThrow(RangeError);
    expect(() => viewMapping(0n, 4096)).toThrow(RangeError);
    // The first pages of the address space are never mapped (vm.mmap_min_addr).
    expect(() => viewMapping(4096n, 4096)).toThrow(expect.objectContaining({ name: "HostIoError", errno: "ENOMEM" }));
  });
});

describe("unixListen / unixAccept / waitReadable", () => {
  it("serves a connection at a path, with fds, and waits for data with a timeout", () => {
    const dir = mkdtempSync(join(tmpdir(), "hostio-listen-"));
    try {
      const path = join(dir, "sock");
      const listener = track(unixListen(path));
      expect(lstatSync(path).isSocket()).toBe(true);
      expect(statSync(path).mode & 0o077).toBe(0);
      expect(unixAccept(listener)).toBeNull();
      const client = track(unixConnect(path));
      expect(waitReadable(listener, 1000)).toBe(true);
      const server = track(unixAccept(listener)!);
      expect(waitReadable(server, 20)).toBe(false);
      const memfd = track(memfdCreate("passed"));
      sendFds(client, Uint8Array.of(1, 2, 3), [memfd]);
      expect(waitReadable(server, 1000)).toBe(true);
      const got = recvFds(server, new Uint8Array(16))!;
      expect(got.bytes).toBe(3);
      expect(got.fds).toHaveLength(1);
      track(got.fds[0]!);
      closeSync(open.splice(open.indexOf(client), 1)[0]!);
      expect(waitReadable(server, 1000)).toBe(true); // hang-up reads as readable (EOF)
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("waitAnyReadable names the first readable fd of several, and times out with -1", () => {
    const [a0, a1] = socketPair().map(track) as [number, number];
    const [b0, b1] = socketPair().map(track) as [number, number];
    expect(waitAnyReadable([a0, b0], 20)).toBe(-1);
    writeSync(b1, Uint8Array.of(7));
    expect(waitAnyReadable([a0, b0], 1000)).toBe(1);
    writeSync(a1, Uint8Array.of(9));
    expect(waitAnyReadable([a0, b0], 1000)).toBe(0); // both readable: the first one's index
    expect(readSync(a0, new Uint8Array(4))).toBe(1);
    expect(waitAnyReadable([a0, b0], 1000)).toBe(1);
    expect(() => waitAnyReadable([], 10)).toThrow(RangeError);
    expect(() => waitAnyReadable([a0, -1], 10)).toThrow(RangeError);
    expect(() => waitAnyReadable([a0], -2)).toThrow(RangeError);
  });

  it("datagram sockets: bound at a path (0600, never over an existing file), connected both ways, one message per datagram, full queues wait", () => {
    const dir = mkdtempSync(join(tmpdir(), "hostio-dgram-"));
    try {
      const [pa, pb] = [join(dir, "a"), join(dir, "b")];
      const a = track(unixDgramBind(pa));
      expect(lstatSync(pa).isSocket()).toBe(true);
      expect(statSync(pa).mode & 0o077).toBe(0);
      expect(() => unixDgramBind(pa)).toThrow(expect.objectContaining({ name: "HostIoError", errno: "EADDRINUSE" }));
      expect(() => unixDgramConnect(a, pb)).toThrow(expect.objectContaining({ errno: "ENOENT" }));
      const b = track(unixDgramBind(pb));
      unixDgramConnect(a, pb);
      unixDgramConnect(b, pa);
      writeSync(a, Uint8Array.of(1, 2, 3));
      writeSync(a, Uint8Array.of(4));
      const buf = new Uint8Array(16);
      expect(readSync(b, buf)).toBe(3); // message boundaries kept
      expect(readMessage(b, buf)).toBe(1);
      expect(readMessage(b, buf)).toBe(-1); // none queued: -1, no exception
      expect(waitReadable(b, 0)).toBe(false);
      expect(writeMessage(b, Uint8Array.of(5, 6, 7, 8, 9))).toBe(5);
      const small = new Uint8Array(2);
      expect(readMessage(a, small)).toBe(2); // truncated to the buffer
      expect([...small]).toEqual([5, 6]);
      // What waits for the peer is bounded (the sender's buffer, since the peer is connected back): a full one
      // makes the sender wait, not lose; it can write again once the peer read most of it.
      let sent = 0;
      for (;;) {
        try {
          writeSync(a, Uint8Array.of(sent & 0xff));
          sent++;
        } catch (e) {
          expect((e as NodeJS.ErrnoException).code).toBe("EAGAIN");
          break;
        }
      }
      expect(sent).toBeGreaterThan(0);
      expect(waitWritable(a, 20)).toBe(false);
      let read = 0;
      while (waitReadable(b, 0)) expect(readSync(b, buf)).toBe(1), read++;
      expect(read).toBe(sent);
      expect(waitWritable(a, 1000)).toBe(true);
      closeSync(open.splice(open.indexOf(b), 1)[0]!);
      expect(() => writeSync(a, Uint8Array.of(9))).toThrow(expect.objectContaining({ code: "ECONNREFUSED" })); // the peer is gone
      expect(() => unixDgramConnect(a, pb)).toThrow(expect.objectContaining({ errno: "ECONNREFUSED" })); // its file stays, stale
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("never replaces an existing file at the path", () => {
    const dir = mkdtempSync(join(tmpdir(), "hostio-listen-"));
    try {
      const path = join(dir, "precious");
      writeFileSync(path, "data");
      expect(() => unixListen(path)).toThrow(/EADDRINUSE/);
      expect(statSync(path).isFile()).toBe(true);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("rejects bad timeouts", () => {
    expect(() => waitReadable(0, 1.5)).toThrow(RangeError);
    expect(() => waitReadable(0, -2)).toThrow(RangeError);
  });
});

describe("ioctl", () => {
  // FIONREAD (0x541B) on a socket: the byte count queued, written through the pointer.
  it("passes a buffer the kernel writes, and an integer argument", () => {
    const dir = mkdtempSync(join(tmpdir(), "hostio-ioctl-"));
    try {
      const listener = track(unixListen(join(dir, "s")));
      const client = track(unixConnect(join(dir, "s")));
      const server = track(unixAccept(listener)!);
      sendFds(client, new Uint8Array(37));
      const out = new Uint8Array(4);
      expect(ioctl(server, 0x541b, out)).toBe(0);
      expect(new DataView(out.buffer).getInt32(0, true)).toBe(37);
      // FIONBIO takes a pointer too; an unknown request on a socket fails with an errno, not a crash.
      expect(() => ioctlValue(server, 0x12345678, 0)).toThrow(HostIoError);
      expect(() => ioctl(server, -1, out)).toThrow(RangeError);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});
