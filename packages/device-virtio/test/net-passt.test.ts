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
      "--foreground", "--quiet", "--ipv4-only", "--fd", "3",
      "--address", "10.0.2.15", "--netmask", "24", "--gateway", "10.0.2.2",
      "--tcp-ports", "8080:80", "--udp-ports", "5353:53",
    ]);
    expect(passtArguments({})).toEqual(["--foreground", "--quiet", "--ipv4-only", "--fd", "3", "--tcp-ports", "none", "--udp-ports", "none"]);
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
