import {
  closeSync,
  fstatSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { HostIoError, memfdCreate, recvFds, sendFds, socketPair, unixConnect, watchReadable } from "../src/index.js";

const text = (s: string) => new TextEncoder().encode(s);
const open: number[] = [];
const track = <T extends number | number[]>(fds: T): T => {
  open.push(...(Array.isArray(fds) ? fds : [fds]));
  return fds;
};
afterEach(() => {
  for (const fd of open.splice(0)) closeSync(fd);
});

describe("memfdCreate", () => {
  it("makes an empty anonymous file that can be sized, written and read back", () => {
    const fd = track(memfdCreate("vmm-test"));
    expect(fstatSync(fd).size).toBe(0);
    expect(readlinkSync(`/proc/self/fd/${fd}`)).toBe("/memfd:vmm-test (deleted)");
    ftruncateSync(fd, 8192);
    expect(fstatSync(fd).size).toBe(8192);
    writeSync(fd, text("guest page"), 0, 10, 4096);
    const back = new Uint8Array(10);
    expect(readSync(fd, back, 0, 10, 4096)).toBe(10);
    expect(new TextDecoder().decode(back)).toBe("guest page");
  });

  it("refuses names the kernel cannot take", () => {
    expect(() => memfdCreate("x".repeat(250))).toThrow(RangeError);
    expect(() => memfdCreate(3 as never)).toThrow(TypeError);
  });
});

describe("SCM_RIGHTS over a socketpair", () => {
  it("sends a memfd to the other end, which reads what was written through the received fd", () => {
    const [a, b] = track(socketPair());
    const mem = track(memfdCreate("dma-region"));
    writeSync(mem, text("written before sending"), 0, 22, 0);
    expect(sendFds(a, text("region"), [mem])).toBe(6);

    const buf = new Uint8Array(64);
    const got = recvFds(b, buf)!;
    expect(got.bytes).toBe(6);
    expect(new TextDecoder().decode(buf.subarray(0, 6))).toBe("region");
    expect(got.fds).toHaveLength(1);
    const [received] = track(got.fds);
    expect(received).not.toBe(mem);
    // The same open file: the receiver reads the sender's bytes and the sender sees the receiver's writes.
    const back = new Uint8Array(22);
    expect(readSync(received!, back, 0, 22, 0)).toBe(22);
    expect(new TextDecoder().decode(back)).toBe("written before sending");
    writeSync(received!, text("reply"), 0, 5, 100);
    const reply = new Uint8Array(5);
    readSync(mem, reply, 0, 5, 100);
    expect(new TextDecoder().decode(reply)).toBe("reply");
    // Received fds are close-on-exec.
    expect(readFdFlags(received!)).toContain("cloexec");
    expect(recvFds(b, buf)).toBeNull(); // nothing queued: EAGAIN
  });

  it("carries several fds, in order, and plain data without any", () => {
    const [a, b] = track(socketPair({ seqpacket: true }));
    const dir = mkdtempSync(join(tmpdir(), "host-io-fds-"));
    try {
      const files = ["one", "two", "three"].map((name) => {
        writeFileSync(join(dir, name), name);
        return track(openSync(join(dir, name), "r"));
      });
      expect(sendFds(a, text("plain"))).toBe(5);
      expect(sendFds(a, text("three"), files)).toBe(5);
      const buf = new Uint8Array(16);
      expect(recvFds(b, buf)).toEqual({ bytes: 5, fds: [] });
      const got = recvFds(b, buf)!;
      track(got.fds);
      expect(got.fds.map((fd) => readlinkSync(`/proc/self/fd/${fd}`))).toEqual(["one", "two", "three"].map((n) => join(dir, n)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("throws EMSGSIZE for more fds than maxFds and closes the ones that arrived", () => {
    const [a, b] = track(socketPair({ seqpacket: true }));
    const fds = [track(memfdCreate("m1")), track(memfdCreate("m2"))];
    sendFds(a, text("x"), fds);
    const before = countOpenFds();
    expect(() => recvFds(b, new Uint8Array(4), 1)).toThrow(expect.objectContaining({ name: "HostIoError", errno: "EMSGSIZE" }));
    expect(countOpenFds()).toBe(before);
  });

  it("reports end of stream, EPIPE and bad arguments", () => {
    const [a, b] = socketPair();
    track(a);
    closeSync(b);
    expect(recvFds(a, new Uint8Array(4))).toEqual({ bytes: 0, fds: [] });
    expect(() => sendFds(a, text("x"))).toThrow(expect.objectContaining({ errno: "EPIPE", syscall: "sendmsg" }));
    expect(() => sendFds(a, new Uint8Array(0), [a])).toThrow(RangeError);
    expect(() => sendFds(a, text("x"), [-1])).toThrow(TypeError);
    expect(() => recvFds(a, new Uint8Array(4), 300)).toThrow(RangeError);
    expect(() => recvFds(a, [] as never)).toThrow(TypeError);
  });

  it("a readable watch on the socket fires when a message with fds arrives", async () => {
    const [a, b] = track(socketPair());
    const got = new Promise<number[]>((resolve) => {
      const watch = watchReadable(b, () => {
        const m = recvFds(b, new Uint8Array(8));
        if (!m) return;
        watch.close();
        resolve(track(m.fds));
      });
    });
    setTimeout(() => sendFds(a, text("late"), [track(memfdCreate("late"))]), 10);
    expect(await got).toHaveLength(1);
  });
});

describe("unixConnect", () => {
  let server: Server | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    server = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("connects to a listening unix socket and exchanges bytes with it", async () => {
    dir = mkdtempSync(join(tmpdir(), "host-io-sock-"));
    const path = join(dir, "vfio-user.sock");
    const accepted = new Promise<Socket>((resolve) => {
      server = createServer(resolve);
      server.listen(path);
    });
    await new Promise((r) => server!.once("listening", r));
    const fd = track(unixConnect(path));
    const peer = await accepted;
    const data = new Promise<string>((resolve) => peer.once("data", (d) => resolve(d.toString())));
    expect(sendFds(fd, text("hello"))).toBe(5);
    expect(await data).toBe("hello");
    peer.destroy();
  });

  it("names the path and errno when nothing listens", () => {
    dir = mkdtempSync(join(tmpdir(), "host-io-sock-"));
    let err: unknown;
    try {
      unixConnect(join(dir, "missing.sock"));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HostIoError);
    expect(err).toMatchObject({ errno: "ENOENT", syscall: `connect(${join(dir, "missing.sock")})` });
    expect(() => unixConnect("")).toThrow(RangeError);
  });
});

function readFdFlags(fd: number): string[] {
  const flags = parseInt(/flags:\s*(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, "utf8"))![1]!, 8);
  return flags & 0o2000000 ? ["cloexec"] : [];
}

function countOpenFds(): number {
  return readdirSync("/proc/self/fd").length;
}
