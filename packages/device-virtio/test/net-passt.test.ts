import { hostToolAvailable } from "@vmm/test-support";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { ConfigurationError, MemoryLogger } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { PasstNetBackend, parsePasstForwards, passtArguments } from "../src/backends/net-passt.js";
import type { VirtioNet } from "../src/devices/net.js";
import plugin from "../src/plugin.js";
import { until } from "./harness.js";
import { createPluginDevice } from "./plugin-devices.js";

// virtio-net on passt (user-mode networking): vmm starts passt with one end of a socketpair on fd 3; passt quits
// when that socket closes, so it dies with vmm however vmm ends.

const HAVE_PASST = hostToolAvailable("passt");
if (!HAVE_PASST) console.warn("SKIP net-passt process tests: the passt binary is missing (Debian package passt)");

/** True while the process runs (a zombie waiting for its reaper counts as gone). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

const GUEST_MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const GUEST_IP = [10, 0, 2, 15];
const GATEWAY = [10, 0, 2, 2];
const OPTIONS = { address: "10.0.2.15", prefix: 24, gateway: "10.0.2.2" };

function arpRequest(): Uint8Array {
  const f = new Uint8Array(42);
  f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0);
  f.set(GUEST_MAC, 6);
  f.set([0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01], 12);
  f.set(GUEST_MAC, 22);
  f.set(GUEST_IP, 28);
  f.set(GATEWAY, 38);
  return f;
}

/** A DHCPDISCOVER (RFC 2131) from GUEST_MAC: Ethernet broadcast, IPv4 0.0.0.0 -> 255.255.255.255, UDP 68 -> 67. */
function dhcpDiscover(xid: number): Uint8Array {
  const dhcp = new Uint8Array(300);
  const v = new DataView(dhcp.buffer);
  dhcp.set([1, 1, 6, 0]); // BOOTREQUEST, Ethernet, 6-byte address
  v.setUint32(4, xid);
  dhcp.set(GUEST_MAC, 28);
  dhcp.set([99, 130, 83, 99], 236); // magic cookie
  dhcp.set([53, 1, 1, 55, 3, 1, 3, 6, 255], 240); // DISCOVER; asks for netmask, router, DNS
  const frame = new Uint8Array(14 + 20 + 8 + dhcp.length);
  const f = new DataView(frame.buffer);
  frame.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 0);
  frame.set(GUEST_MAC, 6);
  f.setUint16(12, 0x0800);
  frame.set([0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17], 14);
  f.setUint16(16, 20 + 8 + dhcp.length);
  frame.set([255, 255, 255, 255], 30);
  let sum = 0;
  for (let i = 14; i < 34; i += 2) sum += f.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  f.setUint16(24, ~sum & 0xffff);
  f.setUint16(34, 68);
  f.setUint16(36, 67);
  f.setUint16(38, 8 + dhcp.length);
  frame.set(dhcp, 42);
  return frame;
}

/** The DHCP options of a reply frame to UDP port 68 with this xid, by code; undefined for other frames. */
function dhcpReply(frame: Uint8Array, xid: number): Map<number, Uint8Array> | undefined {
  const f = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (frame.length < 14 + 20 + 8 + 240 || f.getUint16(12) !== 0x0800 || frame[23] !== 17) return undefined;
  const udp = 14 + (frame[14]! & 15) * 4;
  const dhcp = udp + 8;
  if (f.getUint16(udp + 2) !== 68 || frame[dhcp] !== 2 || f.getUint32(dhcp + 4) !== xid) return undefined;
  const options = new Map<number, Uint8Array>([[0, frame.subarray(dhcp + 16, dhcp + 20)]]); // 0: yiaddr
  for (let at = dhcp + 240; at + 1 < frame.length && frame[at] !== 255; ) {
    if (frame[at] === 0) { at++; continue; }
    options.set(frame[at]!, frame.subarray(at + 2, at + 2 + frame[at + 1]!));
    at += 2 + frame[at + 1]!;
  }
  return options;
}

describe("passt options", () => {
  it("parses forwards joined by +", () => {
    expect(parsePasstForwards("8080:80/tcp+5353:53/udp+22/tcp")).toEqual([
      { host: 8080, guest: 80, protocol: "tcp" },
      { host: 5353, guest: 53, protocol: "udp" },
      { host: 22, guest: 22, protocol: "tcp" },
    ]);
    expect(() => parsePasstForwards("8080:80")).toThrow(ConfigurationError);
    expect(() => parsePasstForwards("70000:80/tcp")).toThrow(/ports 1-65535/);
  });

  it("builds passt's command line", () => {
    expect(passtArguments({ ...OPTIONS, forwards: parsePasstForwards("8080:80/tcp+5353:53/udp") })).toEqual([
      "--foreground", "--quiet", "--fd", "3",
      "--address", "10.0.2.15", "--netmask", "24", "--gateway", "10.0.2.2",
      "--tcp-ports", "8080:80", "--udp-ports", "5353:53",
    ]);
    expect(passtArguments({})).toEqual(["--foreground", "--quiet", "--fd", "3", "--tcp-ports", "none", "--udp-ports", "none"]);
    expect(passtArguments({ ipv6: false }).slice(0, 5)).toEqual(["--foreground", "--quiet", "--ipv4-only", "--fd", "3"]);
  });

  it("a missing passt binary is one line naming the Debian package", async () => {
    const e = await PasstNetBackend.open({ binary: "/nonexistent/passt", label: "net0" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigurationError);
    expect((e as Error).message).toBe("net0: backend=passt: '/nonexistent/passt' not found; install the Debian package passt (apt-get install passt)");
  });
});

/** Makes virtio-net devices named net0 from raw options through the plugin. */
async function netType() {
  return (raw: Record<string, unknown>) => createPluginDevice("virtio-net", raw, "net0");
}

describe("the plugin's passt options", () => {
  it("refuses passt options on other backends, and address options beside socket=", async () => {
    const make = await netType();
    await expect(make({ backend: "tap", forward: "1/tcp" })).rejects.toThrow("net0: forward applies only to backend=passt");
    await expect(make({ backend: "passt", socket: "/nonexistent/s", address: "10.0.2.15" })).rejects.toThrow(/with socket=, passt is configured where it runs \(address not applied\)/);
    await expect(make({ mode: "user", forward: "x" })).rejects.toThrow("net0: forward 'x': expected HOST:GUEST/tcp or HOST:GUEST/udp with ports 1-65535");
    await expect(make({ backend: "tap", ipv6: false })).rejects.toThrow("net0: ipv6 applies only to backend=passt");
    await expect(make({ backend: "passt", socket: "/nonexistent/s", ipv6: false })).rejects.toThrow(/\(ipv6 not applied\)/);
  });

  it("takes kvmtool's -n names (guest_mac, guest_ip, host_ip, tapif) for its own, and refuses both spellings at once", async () => {
    const make = await netType();
    await expect(make({ mode: "user", guest_ip: "10.0.2.15", address: "10.0.2.16" })).rejects.toThrow("net0: guest_ip and address name the same setting; give one");
    await expect(make({ mode: "tap", tapif: "tap0", ifname: "tap1" })).rejects.toThrow("net0: tapif and ifname name the same setting; give one");
    await expect(make({ mode: "socket", path: "/nonexistent/s", guest_mac: "01:00:00:00:00:01" })).rejects.toThrow("'01:00:00:00:00:01' is not a unicast MAC address");
    await expect(make({ mode: "socket", guest_ip: "10.0.2.15", path: "/x" })).rejects.toThrow("net0: address applies only to backend=passt");
  });
});

describe.skipIf(!HAVE_PASST)("passt process lifetime", () => {
  it("the plugin starts passt for backend=passt and mode=user, and closing the device stops it", async () => {
    const make = await netType();
    for (const raw of [{ backend: "passt", ...OPTIONS, forward: "18080:80/tcp" }, { mode: "user", ...OPTIONS }]) {
      const fn = await make(raw);
      const backend = (fn.virtioDevice as VirtioNet).backend as PasstNetBackend;
      expect(backend).toBeInstanceOf(PasstNetBackend);
      const pid = backend.pid!;
      expect(alive(pid)).toBe(true);
      await fn.close();
      expect(alive(pid)).toBe(false);
    }
  });

  it("starts passt, exchanges frames with it (ARP for the gateway) and stops it on close", async () => {
    const backend = await PasstNetBackend.open(OPTIONS);
    const pid = backend.pid!;
    expect(alive(pid)).toBe(true);
    const frames: Uint8Array[] = [];
    backend.open((f) => frames.push(f));
    backend.send(arpRequest());
    await until(() => frames.some((f) => f[12] === 0x08 && f[13] === 0x06 && f[21] === 2));
    const reply = frames.find((f) => f[12] === 0x08 && f[13] === 0x06)!;
    expect([...reply.subarray(28, 32)]).toEqual(GATEWAY); // sender: the gateway
    expect([...reply.subarray(0, 6)]).toEqual(GUEST_MAC);
    await backend.close();
    expect(alive(pid)).toBe(false);
  });

  it("passt's DHCP server offers the address, netmask and gateway vmm gave it", async () => {
    const backend = await PasstNetBackend.open(OPTIONS);
    const replies: Map<number, Uint8Array>[] = [];
    backend.open((f) => {
      const r = dhcpReply(f, 0x766d6d01);
      if (r) replies.push(r);
    });
    try {
      backend.send(dhcpDiscover(0x766d6d01));
      await until(() => replies.length > 0);
      const offer = replies[0]!;
      expect([...offer.get(53)!]).toEqual([2]); // DHCPOFFER
      expect([...offer.get(0)!]).toEqual(GUEST_IP);
      expect([...offer.get(1)!]).toEqual([255, 255, 255, 0]);
      expect([...offer.get(3)!].slice(0, 4)).toEqual(GATEWAY);
    } finally {
      await backend.close();
    }
  });

  it("refuses options passt rejects at startup", async () => {
    const e = await PasstNetBackend.open({ address: "not-an-address" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigurationError);
    expect((e as Error).message).toMatch(/passt exited at startup/);
  });

  it("reports a passt that dies in one line", async () => {
    const logger = new MemoryLogger();
    const backend = await PasstNetBackend.open({ ...OPTIONS, logger, label: "net0" });
    process.kill(backend.pid!, "SIGKILL");
    await until(() => backend.exit !== undefined);
    const errors = logger.lines.filter((l) => l.startsWith("error: "));
    expect(errors).toEqual([`error: net0: passt (pid ${backend.pid}) exited with signal SIGKILL; the network is down`]);
    backend.send(arpRequest()); // dropped, no throw
    expect(backend.dropped).toBe(1);
    await backend.close();
  });

  // A stand-in for vmm: starts passt exactly as the backend does and prints its pid; the test then kills it.
  const STAND_IN = `
    const { spawn } = require("node:child_process");
    const c = spawn("passt", JSON.parse(process.argv[1]), { stdio: ["ignore", "ignore", "ignore", "pipe"] });
    c.on("spawn", () => console.log(c.pid));
    setInterval(() => {}, 1000);`;

  for (const signal of ["SIGKILL", "SIGTERM", "SIGINT"] as const) {
    it(`leaves no passt behind when vmm dies of ${signal}`, async () => {
      const vmm = spawn(process.execPath, ["-e", STAND_IN, JSON.stringify(passtArguments(OPTIONS))], { stdio: ["ignore", "pipe", "inherit"] });
      const pid = await new Promise<number>((resolve) => vmm.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
      await new Promise((r) => setTimeout(r, 300));
      expect(alive(pid)).toBe(true);
      vmm.kill(signal);
      await until(() => !alive(pid));
    });
  }
});
