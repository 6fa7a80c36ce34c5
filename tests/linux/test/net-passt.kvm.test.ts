// User-mode networking (passt) judged by Linux in the guest and TCP on the host, with vmm unprivileged: as a root
// test runner, vmm runs as nobody with only a private /dev/kvm node of its own (test-support's unprivileged()).
// The guest's init takes its address by DHCP, connects out to a host server through the gateway (passt maps it to
// the host), takes an IPv6 address from passt's router advertisement where the host has IPv6, and answers a host
// connection that arrives through a port forward. Options are given in kvmtool's -n spelling.
import { hostToolAvailable, unprivileged } from "@vmm/test-support";
import { chmod, copyFile, mkdtemp, rm, rmdir } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { bootLinux } from "../src/boot.js";

const guest = inject("linuxGuest");
const GUEST_IP = "10.0.2.15";
const GATEWAY = "10.0.2.2";
const GUEST_MAC = "52:54:00:12:34:56";
/** The guest port the forward leads to. */
const GUEST_PORT = 8080;

const HAVE_PASST = hostToolAvailable("passt");
if (!HAVE_PASST) console.warn("SKIP Linux virtio-net on passt: the passt binary is missing (Debian package passt)");

/** passt offers IPv6 only where the host has an IPv6 default route. */
const HOST_IPV6 = (() => {
  try {
    return readFileSync("/proc/net/ipv6_route", "utf8").split("\n").some((l) => /^0{32} 00 /.test(l) && !/ lo$/.test(l.trim()));
  } catch {
    return false;
  }
})();
if (HAVE_PASST && !HOST_IPV6) console.warn("SKIP the IPv6 part of Linux on passt: this host has no IPv6 default route, so passt offers none");

/** A server answering each line with "host got: LINE"; it records the lines. */
async function lineServer(host: string): Promise<{ server: Server; port: number; received: string[] }> {
  const received: string[] = [];
  const server = createServer((socket: Socket) => {
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      text += chunk;
      if (!text.includes("\n")) return;
      const line = text.slice(0, text.indexOf("\n"));
      received.push(line);
      socket.end(`host got: ${line}\n`);
    });
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return { server, port: (server.address() as { port: number }).port, received };
}

/** A TCP port free on the host's loopback now (passt listens there for the forward). */
async function freePort(): Promise<number> {
  const { server, port } = await lineServer("127.0.0.1");
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Connects to the forward, sends a line, resolves with the reply line. */
function exchange(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(`${line}\n`));
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("end", () => resolve(text.replace(/\n$/, "")));
    socket.on("error", reject);
  });
}

const ipv6Title = HOST_IPV6 ? ", an IPv6 address by SLAAC and TCP over IPv6 to the router" : "";
describe.skipIf(!guest.ok || !HAVE_PASST)("Linux's virtio-net on passt", () => {
  it(`gives an unprivileged VM a DHCP lease, TCP out through the gateway${ipv6Title}, and a host connection through a port forward`, async () => {
    const g = guest as { ok: true; bzImage: string; initramfs: string };
    // The guest images where nobody can read them (the kernel cache is under root's home).
    const images = await mkdtemp(join(tmpdir(), "vmm-linux-passt-"));
    const scratch = await mkdtemp(join(tmpdir(), "vmm-linux-kvm-"));
    await chmod(images, 0o755);
    const bzImage = join(images, "bzImage");
    const initramfs = join(images, "init.cpio");
    await copyFile(g.bzImage, bzImage);
    await copyFile(g.initramfs, initramfs);
    await Promise.all([chmod(bzImage, 0o644), chmod(initramfs, 0o644)]);
    const runner = unprivileged(scratch);
    if (!runner.ok) throw new Error(`cannot run vmm unprivileged here: ${runner.reason}`);

    const out = await lineServer(HOST_IPV6 ? "::" : "127.0.0.1");
    const hostPort = await freePort();
    let forwarded: Promise<string> | undefined;
    try {
      const checks = [
        "dhcp:eth0",
        `tcp:${GATEWAY}:${out.port}`,
        ...(HOST_IPV6 ? ["ipv6:eth0", `tcp6:[router]:${out.port}`] : []),
        `listen:${GUEST_PORT}`,
      ];
      const r = await bootLinux({
        bzImage,
        initramfs,
        vmmArgs: ["-m", "256M", "-n", `mode=user,guest_ip=${GUEST_IP},prefix=24,host_ip=${GATEWAY},guest_mac=${GUEST_MAC},forward=${hostPort}:${GUEST_PORT}/tcp`],
        checks,
        timeoutMs: 200_000,
        command: runner.command,
        onBoot: () => (forwarded = undefined),
        // The host connects once the guest listens; passt carries it to the guest's port.
        onLine: (line) => {
          if (line === `@@ listen ${GUEST_PORT} ready`) forwarded = exchange(hostPort, "hello from the host").catch((e: Error) => `error: ${e.message}`);
        },
      });
      expect(r.report.at(-1), r.serial.slice(-3000) + r.stderr).toBe("done failures=0");
      expect(r.status).toBe(0);
      expect(r.report).toContainEqual(expect.stringMatching(new RegExp(`^dhcp eth0 address=${GUEST_IP}/24 router=${GATEWAY} dns=\\d+\\.\\d+\\.\\d+\\.\\d+ lease=\\d+ server=\\S+ ok$`)));
      expect(r.report).toContain(`tcp ${GATEWAY}:${out.port} got 'host got: hello from the guest' ok`);
      if (HOST_IPV6) {
        // SLAAC: the interface ID comes from the MAC (modified EUI-64), the prefix from passt's advertisement.
        expect(r.report).toContainEqual(expect.stringMatching(/^ipv6 eth0 address=[0-9a-f:]+:5054:ff:fe12:3456\/64 router=fe80:[0-9a-f:]+ ok$/));
        expect(r.report).toContain(`tcp6 [router]:${out.port} got 'host got: hello from the guest' ok`);
      }
      expect(out.received).toEqual(HOST_IPV6 ? ["hello from the guest", "hello from the guest"] : ["hello from the guest"]);
      expect(await forwarded).toBe("guest got: hello from the host");
      expect(r.report).toContain(`listen ${GUEST_PORT} got 'hello from the host' ok`);
      // Nothing went wrong on the way, unprivileged (no warning about passt, the tap or the disk).
      expect(r.stderr).toBe("");
    } finally {
      await new Promise((resolve) => out.server.close(resolve));
      await rm(images, { recursive: true, force: true });
      await rmdir(scratch);
    }
  }, 420_000);
});
