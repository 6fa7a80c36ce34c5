import { spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { fileURLToPath } from "node:url";
import { insideNetns, ip, netnsOk, runInFreshNetns } from "@vmm/test-support/netns";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostIoError, openTap, type Tap } from "../src/index.js";
import { packageRoot } from "../src/native.js";
import { arpRequest, type Bytes, icmpEcho, parseArp, parseIcmpEcho } from "./support/frames.js";

// The tap tests run in a child vitest inside a fresh network namespace (unshare -n): the tap, its address
// 10.213.0.1/24 and every frame exist only there, and the namespace dies with the child.
const IFNAME = "vmmtap0";
const HOST_IP: Bytes = [10, 213, 0, 1];
const GUEST_IP: Bytes = [10, 213, 0, 2];
const MAC: Bytes = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const hasSetpriv = spawnSync("setpriv", ["--version"], { stdio: "ignore" }).status === 0;
if (netnsOk && !insideNetns && !hasSetpriv) console.warn("WARNING: util-linux `setpriv` missing: the tap EPERM test is SKIPPED");

describe("openTap argument and device errors (no interface is created)", () => {
  it("refuses names the kernel cannot take, before any system call", () => {
    expect(() => openTap("a-name-that-is-too-long")).toThrow(RangeError);
    expect(() => openTap("bad/name")).toThrow(RangeError);
    expect(() => openTap("x", { vnetHdr: true, vnetHdrSize: 4 })).toThrow(RangeError);
  });

  it("reports a missing clone device as a HostIoError with errno ENOENT", () => {
    let err: unknown;
    try {
      openTap(IFNAME, { device: "/dev/net/no-such-tun" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HostIoError);
    expect((err as HostIoError).errno).toBe("ENOENT");
    expect((err as HostIoError).syscall).toBe("open(/dev/net/no-such-tun)");
  });
});

describe.skipIf(!netnsOk || insideNetns)("tap in a fresh network namespace", () => {
  it("passes every namespace test in a child vitest under unshare -n", async () => {
    const { status, output } = await runInFreshNetns(packageRoot, fileURLToPath(import.meta.url), 90_000);
    if (status !== 0) console.error(output);
    expect(status, output.slice(-4000)).toBe(0);
    // In the child only this launcher (and the EPERM test without setpriv) is skipped.
    const summary = /Tests\s+(\d+) passed(?: \| (\d+) skipped)? \((\d+)\)/.exec(output);
    expect(summary, output.slice(-4000)).not.toBeNull();
    const skipped = hasSetpriv ? 1 : 2;
    expect(Number(summary![2] ?? 0)).toBe(skipped);
    expect(Number(summary![1])).toBe(Number(summary![3]) - skipped);
  }, 120_000);
});

/** Collects the frames the watcher reads. */
class Reader {
  frames: Uint8Array[] = [];
  wakeups = 0;
  private waiters: Array<() => void> = [];
  private readonly buffer = new Uint8Array(65536 + 64);
  constructor(readonly tap: Tap) {
    tap.onReadable(() => {
      this.wakeups++;
      for (let n = tap.read(this.buffer); n >= 0; n = tap.read(this.buffer)) this.frames.push(this.buffer.slice(0, n));
      for (const w of this.waiters.splice(0)) w();
    });
  }
  /** Resolves with the first frame (old or new) matching `pred`. */
  async waitFor<T>(pick: (f: Uint8Array) => T | undefined, ms = 3000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      for (const f of this.frames) {
        const v = pick(f);
        if (v !== undefined) return v;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${ms} ms (${this.frames.length} frames seen)`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

describe.runIf(insideNetns)("tap (inside the namespace)", () => {
  let tap: Tap;
  let reader: Reader;

  beforeAll(() => {
    tap = openTap(IFNAME);
    ip("addr", "add", "10.213.0.1/24", "dev", IFNAME);
    ip("link", "set", IFNAME, "up");
    reader = new Reader(tap);
  });
  afterAll(() => tap?.close());

  it("creates the interface it was asked for, up with its private address", () => {
    expect(tap.name).toBe(IFNAME);
    expect(tap.vnetHdrSize).toBe(0);
    expect(ip("-br", "addr", "show", "dev", IFNAME)).toContain("10.213.0.1/24");
  });

  it("a frame written to the fd gets the kernel's ARP reply back through the watcher", async () => {
    expect(tap.write(arpRequest(MAC, GUEST_IP, HOST_IP))).toBe(42);
    const reply = await reader.waitFor((f) => {
      const a = parseArp(f);
      return a?.op === 2 && a.targetIp.join() === GUEST_IP.join() ? a : undefined;
    });
    expect(reply.senderIp).toEqual([...HOST_IP]);
    expect(reply.targetMac).toEqual([...MAC]);
    expect(reply.senderMac).toEqual(ip("-br", "link", "show", "dev", IFNAME).split(/\s+/)[2]!.split(":").map((h) => parseInt(h, 16)));
  });

  it("the kernel answers an ICMP echo request with the same id, sequence and payload", async () => {
    const hostMac = ip("-br", "link", "show", "dev", IFNAME).split(/\s+/)[2]!.split(":").map((h) => parseInt(h, 16));
    const payload = new TextEncoder().encode("vmm tap echo payload");
    tap.write(icmpEcho(hostMac, MAC, GUEST_IP, HOST_IP, 0x4242, 7, payload));
    const echo = await reader.waitFor((f) => {
      const e = parseIcmpEcho(f);
      return e?.type === 0 && e.id === 0x4242 ? e : undefined;
    });
    expect(echo.seq).toBe(7);
    expect(echo.src).toEqual([...HOST_IP]);
    expect(echo.dst).toEqual([...GUEST_IP]);
    expect(new TextDecoder().decode(echo.payload)).toBe("vmm tap echo payload");
  });

  it("frames the kernel originates (an ARP request for an unknown neighbour) wake the watcher", async () => {
    const socket = createSocket("udp4");
    await new Promise<void>((r) => socket.send("x", 9, "10.213.0.3", () => r()));
    socket.close();
    const request = await reader.waitFor((f) => {
      const a = parseArp(f);
      return a?.op === 1 && a.targetIp.join() === "10,213,0,3" ? a : undefined;
    });
    expect(request.senderIp).toEqual([...HOST_IP]);
  });

  it("pause() leaves frames queued in the kernel until resume()", async () => {
    tap.pause();
    const before = reader.wakeups;
    reader.frames = [];
    tap.write(arpRequest(MAC, GUEST_IP, HOST_IP));
    await new Promise((r) => setTimeout(r, 150));
    expect(reader.wakeups).toBe(before);
    expect(reader.frames).toHaveLength(0);
    tap.resume();
    const reply = await reader.waitFor((f) => (parseArp(f)?.op === 2 ? true : undefined));
    expect(reply).toBe(true);
    expect(reader.wakeups).toBeGreaterThan(before);
  });

  it("read returns -1 when nothing is queued and truncates to the buffer", () => {
    tap.pause();
    const buf = new Uint8Array(65536 + 64);
    while (tap.read(buf) >= 0);
    expect(tap.read(buf)).toBe(-1);
    tap.resume();
  });

  it("a second attach to the same tap fails with EBUSY, a non-tap name with EINVAL", () => {
    const errno = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(HostIoError);
        expect((e as HostIoError).syscall).toBe("TUNSETIFF");
        return (e as HostIoError).errno;
      }
      return "no error";
    };
    expect(errno(() => openTap(IFNAME))).toBe("EBUSY");
    expect(errno(() => openTap("lo"))).toBe("EINVAL");
  });

  // A process without CAP_NET_ADMIN (setpriv drops it from the bounding set, so the child root lacks it).
  it.skipIf(!hasSetpriv)("creating a tap without CAP_NET_ADMIN fails with EPERM", () => {
    const script = `const n = require(require.resolve("node-gyp-build", { paths: [${JSON.stringify(packageRoot)}] }))(${JSON.stringify(packageRoot)});
      try { n.tapOpen("/dev/net/tun", "vmmtapnoperm", 0); console.log("opened"); } catch (e) { console.log(e.syscall + " " + e.errno); }`;
    const r = spawnSync("setpriv", ["--bounding-set=-net_admin", "--inh-caps=-net_admin", process.execPath, "-e", script], { encoding: "utf8" });
    expect(r.stdout.trim()).toBe("TUNSETIFF EPERM");
  });

  it("a kernel-named tap with IFF_VNET_HDR prefixes frames with the header; close() removes the interface", async () => {
    const t = openTap("", { vnetHdr: true, vnetHdrSize: 12 });
    expect(t.name).toMatch(/^tap\d+$/);
    expect(t.vnetHdrSize).toBe(12);
    ip("addr", "add", "10.214.0.1/24", "dev", t.name);
    ip("link", "set", t.name, "up");
    const r = new Reader(t);
    const frame = arpRequest(MAC, [10, 214, 0, 2], [10, 214, 0, 1]);
    const withHdr = new Uint8Array(12 + frame.length);
    withHdr.set(frame, 12);
    expect(t.write(withHdr)).toBe(withHdr.length);
    const reply = await r.waitFor((f) => (parseArp(f.subarray(12))?.op === 2 ? f : undefined));
    expect([...reply.subarray(0, 10)]).toEqual(new Array(10).fill(0)); // no offloads on an ARP reply
    t.close();
    expect(t.isClosed).toBe(true);
    expect(() => ip("link", "show", "dev", t.name)).toThrow();
  });
});
