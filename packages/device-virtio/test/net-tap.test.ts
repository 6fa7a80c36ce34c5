import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ConfigurationError, MemoryLogger } from "@vmm/core";
import { HostIoError } from "@vmm/host-io";
import { kvmAvailability } from "@vmm/kvm-native";
import { kvmTestGate } from "@vmm/test-support";
import { insideNetns, ip, netnsOk, runInFreshNetns } from "@vmm/test-support/netns";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tapAttachHint, TapNetBackend } from "../src/backends/net-tap.js";
import { VirtioNet } from "../src/devices/net.js";
import plugin from "../src/plugin.js";
import { setupTransport, until } from "./harness.js";
import { createPluginDevice } from "./plugin-devices.js";
import { buildVirtioGuest, VirtioGuestVm } from "./kvm-guest.js";

// virtio-net on a tap: the namespace tests run in a child vitest under `unshare -n`, so the taps, their
// private addresses and all traffic exist only in a namespace that dies with the child.
const MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56] as const;
const HOST_IP = [10, 213, 0, 1] as const;
const packageDir = fileURLToPath(new URL("..", import.meta.url));
const kvm = kvmAvailability();

function arpRequest(senderIp: readonly number[], targetIp: readonly number[]): Uint8Array {
  return Uint8Array.from([
    ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], ...MAC, 0x08, 0x06,
    0, 1, 8, 0, 6, 4, 0, 1, ...MAC, ...senderIp, 0, 0, 0, 0, 0, 0, ...targetIp,
  ]);
}

/** An ARP reply in a received frame: who answered, for whom. */
function arpReply(frame: Uint8Array) {
  if (frame.length < 42 || frame[12] !== 0x08 || frame[13] !== 0x06 || frame[21] !== 2) return undefined;
  return { dstMac: [...frame.subarray(0, 6)], senderIp: [...frame.subarray(28, 32)], targetMac: [...frame.subarray(32, 38)], targetIp: [...frame.subarray(38, 42)] };
}

function guest(backend: TapNetBackend) {
  const device = new VirtioNet(backend, MAC);
  const t = setupTransport(device);
  expect(t.driver.init({})).toBe(true);
  const rx = t.driver.rings[0]!;
  const tx = t.driver.rings[1]!;
  const rxBufs = new Map<number, number>(); // head -> address
  return {
    ...t,
    device,
    rx,
    transmit(frame: Uint8Array) {
      const buf = t.alloc.alloc(12 + frame.length);
      t.mem.write(buf + 12, frame);
      tx.post([{ addr: buf, len: 12 }, { addr: buf + 12, len: frame.length }]);
      t.driver.kick(1);
    },
    postRx(count: number) {
      for (let i = 0; i < count; i++) {
        const a = t.alloc.alloc(2048);
        rxBufs.set(rx.post([{ addr: a, len: 2048, write: true }]), a);
      }
      t.driver.kick(0);
    },
    /** Received frames (header stripped) with their virtio_net_hdr. */
    received: [] as Array<{ hdr: number[]; frame: Uint8Array }>,
    collect() {
      for (const u of rx.takeUsed()) {
        const a = rxBufs.get(u.id)!;
        this.received.push({ hdr: [...t.mem.view(a, 12)], frame: t.mem.view(a + 12, u.len - 12).slice() });
      }
      return this.received;
    },
  };
}

describe("virtio-net flow control (no tap needed)", () => {
  it("pauses a backend that can pause while frames wait for receive buffers, and resumes it once delivered", () => {
    const calls: string[] = [];
    let receive: (f: Uint8Array) => void = () => {};
    const backend = {
      open: (r: (f: Uint8Array) => void) => (receive = r),
      send: () => {},
      close: async () => {},
      pause: () => calls.push("pause"),
      resume: () => calls.push("resume"),
    };
    const device = new VirtioNet(backend, MAC);
    const t = setupTransport(device);
    expect(t.driver.init({})).toBe(true);
    receive(arpRequest([10, 0, 0, 2], HOST_IP)); // no buffers yet
    expect(calls.at(-1)).toBe("pause");
    const buf = t.alloc.alloc(2048);
    t.driver.rings[0]!.post([{ addr: buf, len: 2048, write: true }]);
    t.driver.kick(0);
    expect(calls.at(-1)).toBe("resume");
    expect(t.driver.rings[0]!.takeUsed()).toEqual([{ id: 0, len: 12 + 42 }]);
  });
});

describe("tap backend errors that touch no interface", () => {
  it("a host without the tun device gets a ConfigurationError naming the interface and the errno", () => {
    let err: unknown;
    try {
      TapNetBackend.open("vmmtapx", { device: "/dev/net/no-such-tun", label: "net0" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigurationError);
    expect((err as Error).message).toBe(
      "net0: tap vmmtapx: cannot attach: open(/dev/net/no-such-tun) failed with ENOENT: the host has no tun driver (modprobe tun)",
    );
  });
});

describe("tap attach hints", () => {
  it("tells an operator what to do for each errno the kernel returns", () => {
    const hint = (syscall: string, errno: string) => tapAttachHint(new HostIoError(syscall, errno), "vmmtap0");
    expect(hint("TUNSETIFF", "EPERM")).toMatch(/needs CAP_NET_ADMIN; .*ip tuntap add dev vmmtap0 mode tap user USER/);
    expect(hint("open(/dev/net/tun)", "EACCES")).toMatch(/needs CAP_NET_ADMIN/);
    expect(hint("TUNSETIFF", "EBUSY")).toMatch(/another process/);
    expect(hint("open(/dev/net/tun)", "ENOENT")).toMatch(/no tun driver/);
    expect(hint("TUNSETIFF", "EINVAL")).toMatch(/'vmmtap0' exists and is not a tap/);
    expect(hint("TUNSETIFF", "ENOMEM")).toMatch(/TUNSETIFF failed: ENOMEM/);
  });
});

describe.skipIf(!netnsOk || insideNetns)("virtio-net tap backend in a fresh network namespace", () => {
  it("passes every namespace test in a child vitest under unshare -n", async () => {
    const { status, output } = await runInFreshNetns(packageDir, fileURLToPath(import.meta.url), 90_000);
    if (status !== 0) console.error(output);
    expect(status, output.slice(-4000)).toBe(0);
    // In the child only this launcher (and the KVM guest test on a host without KVM) is skipped.
    const summary = /Tests\s+(\d+) passed(?: \| (\d+) skipped)? \((\d+)\)/.exec(output);
    expect(summary, output.slice(-4000)).not.toBeNull();
    const skipped = kvm.ok ? 1 : 2;
    expect(Number(summary![2] ?? 0)).toBe(skipped);
    expect(Number(summary![1])).toBe(Number(summary![3]) - skipped);
  }, 120_000);
});

describe.runIf(insideNetns)("virtio-net tap backend (inside the namespace)", () => {
  beforeAll(() => {
    // No IPv6 on the namespace's interfaces: only the frames the tests provoke reach the tap.
    writeFileSync("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
  });

  describe("a guest on vmmtap0 (10.213.0.1/24 on the host side)", () => {
    let backend: TapNetBackend;
    let g: ReturnType<typeof guest>;
    beforeAll(() => {
      backend = TapNetBackend.open("vmmtap0", { label: "net0" });
      ip("addr", "add", "10.213.0.1/24", "dev", "vmmtap0");
      ip("link", "set", "vmmtap0", "up");
      g = guest(backend);
    });
    afterAll(async () => {
      await g.device.close();
      expect(() => ip("link", "show", "dev", "vmmtap0")).toThrow(); // closing the device removed the tap
    });

    it("transmits an ARP request for 10.213.0.1 and receives the kernel's reply through the rx queue", async () => {
      g.postRx(1); // exactly one: the next test starts with no receive buffers
      g.transmit(arpRequest([10, 213, 0, 2], HOST_IP));
      expect(backend.txFrames).toBe(1);
      await until(() => g.collect().some((r) => arpReply(r.frame)));
      const got = g.received.find((r) => arpReply(r.frame))!;
      const reply = arpReply(got.frame)!;
      expect(reply.senderIp).toEqual([...HOST_IP]);
      expect(reply.targetIp).toEqual([10, 213, 0, 2]);
      expect(reply.targetMac).toEqual([...MAC]);
      expect(reply.dstMac).toEqual([...MAC]);
      expect(got.hdr).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]); // zero header, num_buffers 1
      expect(g.sink.raises).toBeGreaterThan(0); // the guest was interrupted
    });

    it("with no receive buffers it stops reading the tap, then delivers everything once buffers arrive", async () => {
      g.collect();
      g.received.length = 0;
      const before = backend.rxFrames;
      // Three requests from three addresses: three replies, queued in the kernel while the guest has no buffers.
      for (const last of [3, 4, 5]) g.transmit(arpRequest([10, 213, 0, last], HOST_IP));
      await until(() => backend.rxFrames > before);
      await new Promise((r) => setTimeout(r, 200));
      expect(backend.rxFrames - before).toBe(1); // one frame waits in the device; the rest stay in the kernel
      g.postRx(3);
      await until(() => g.collect().length >= 3);
      expect(backend.rxFrames - before).toBe(3);
      expect(g.received.map((r) => arpReply(r.frame)?.targetIp[3]).sort()).toEqual([3, 4, 5]);
      expect(g.device.rxDropped).toBe(0);
    });

    it("drops (and counts) frames it cannot send, with a warning", () => {
      const logger = new MemoryLogger();
      const b2 = TapNetBackend.open("vmmtap9", { logger, label: "net9" }); // left down: the kernel refuses writes
      b2.send(arpRequest([10, 213, 0, 2], HOST_IP));
      b2.send(new Uint8Array(70_000));
      expect(b2.txDropped).toBe(2);
      expect(b2.txFrames).toBe(0);
      expect(logger.lines.filter((l) => l.startsWith("warn: net9: tap vmmtap9: dropped a transmitted frame"))).toHaveLength(1); // the first drop warns
      void b2.close();
    });

    it("a second attach to a busy tap or to a non-tap interface is a ConfigurationError with the errno", () => {
      expect(() => TapNetBackend.open("vmmtap0", { label: "net1" })).toThrow(/net1: tap vmmtap0: cannot attach: TUNSETIFF failed with EBUSY/);
      expect(() => TapNetBackend.open("lo")).toThrow(/tap lo: cannot attach: TUNSETIFF failed with EINVAL: 'lo' exists and is not a tap/);
    });
  });

  it("the plugin selects it with backend=tap,ifname=NAME (and mode=tap), or a kernel-chosen name", async () => {
    const make = (raw: Record<string, unknown>) => createPluginDevice("virtio-net", raw, "net0");
    for (const raw of [{ backend: "tap", ifname: "vmmtap2" }, { mode: "tap", ifname: "vmmtap3" }, { backend: "tap" }]) {
      const fn = await make(raw);
      const backend = (fn.virtioDevice as VirtioNet).backend as TapNetBackend;
      expect(backend).toBeInstanceOf(TapNetBackend);
      expect(backend.ifname).toBe(raw.ifname ?? backend.ifname);
      expect(backend.ifname).toMatch(/^(vmmtap\d|tap\d+)$/);
      expect(ip("-br", "link", "show", "dev", backend.ifname)).toContain(backend.ifname);
      await fn.close();
    }
  });
});

if (insideNetns) kvmTestGate("@vmm/device-virtio", { what: "tap KVM guest test", check: () => kvm });

describe.runIf(insideNetns && kvm.ok)("virtio-net tap backend under KVM (inside the namespace)", () => {
  it("a freestanding guest driver resolves 10.213.0.1 with ARP and pings it through the tap", async () => {
    writeFileSync("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1");
    const elf = await buildVirtioGuest("virtio-net-tap-arp");
    const backend = TapNetBackend.open("vmmtap5", { label: "virtio-net0" });
    ip("addr", "add", "10.213.0.1/24", "dev", "vmmtap5");
    ip("link", "set", "vmmtap5", "up");
    const vm = new VirtioGuestVm(elf);
    const net = vm.addVirtio("virtio-net0", new VirtioNet(backend, MAC));
    const result = await vm.run(40_000, [net]);
    const serial = vm.serial;
    expect(ip("-br", "link", "show")).not.toContain("vmmtap5"); // closing the device removed the tap
    expect(serial).toMatch(/ok arp: 10\.213\.0\.1 is-at [0-9a-f:]{17}/);
    expect(serial).toContain("ok ping: echo reply from 10.213.0.1");
    expect({ status: result.status, reason: result.reason, serial }).toMatchObject({ status: 0, reason: "debug-exit" });
    // Both queues ran on their workers (the VM's RAM is a memfd): the ARP and echo requests, and at least the replies.
    const counters = net.counters();
    expect(counters).toMatchObject({ txFrames: 2, txDropped: 0, queue1WorkerRequests: 2 });
    expect(counters.queue0WorkerRequests).toBeGreaterThanOrEqual(2);
  }, 60_000);
});
