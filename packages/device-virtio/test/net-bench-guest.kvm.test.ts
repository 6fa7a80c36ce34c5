// The virtio-net benchmark's guest driver (bench/guest/virtio-net-bench.c) under KVM with a handful of frames, so
// the bench cannot silently rot: two VMs linked by the socket backend (JS thread) and by the datagram backend (on
// data-plane workers), and the guest against a host peer on a socket that checks what the guest sends and sends
// it frames with faults the guest must count.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { fileURLToPath } from "node:url";
import { MemoryLogger, Tokens } from "@vmm/core";
import { buildGuest } from "@vmm/guest-kit";
import { kvmAvailability } from "@vmm/kvm-native";
import { Machine, type MachineResult } from "@vmm/machine";
import { kvmTestGate } from "@vmm/test-support";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DgramNetBackend } from "../src/backends/net-dgram.js";
import { type NetBackend, SocketNetBackend } from "../src/backends/net-socket.js";
import { type Mac, VirtioNet } from "../src/devices/net.js";
import { VirtioPciFunction } from "../src/transport/virtio-pci.js";
import { until } from "./harness.js";

const here = dirname(fileURLToPath(import.meta.url));
const kvm = kvmTestGate("@vmm/device-virtio", { what: "virtio-net benchmark guest test", check: kvmAvailability });

const SENDER: Mac = [0x52, 0x54, 0, 0, 0, 1];
const RECEIVER: Mac = [0x52, 0x54, 0, 0, 0, 2]; // the driver's fixed destination

/** A frame in the driver's layout (see virtio-net-bench.c): sequence number at 14, then byte i = (i + 12) & 0xff. */
function benchFrame(size: number, seq: number): Uint8Array {
  const f = new Uint8Array(size);
  f.set(RECEIVER, 0);
  f.set(SENDER, 6);
  f.set([0x88, 0xb5], 12);
  new DataView(f.buffer).setUint32(14, seq, true);
  for (let i = 18; i < size; i++) f[i] = (i + 12) & 0xff;
  return f;
}

/** The bench guest on a fresh machine with one virtio-net function, commands written to its COM1. */
class BenchGuest {
  readonly machine: Machine;
  readonly net: VirtioPciFunction;
  private text = "";
  private readonly input = new PassThrough();
  result: Promise<MachineResult> | undefined;

  constructor(elf: string, backend: NetBackend, mac: Mac) {
    this.machine = new Machine({
      memoryMiB: 64,
      logger: new MemoryLogger(),
      kernel: { kind: "elf", path: elf },
      serial: { input: this.input, output: (b) => void (this.text += Buffer.from(b).toString("latin1")) },
    });
    const c = this.machine.container;
    this.net = new VirtioPciFunction({
      name: "virtio-net0",
      device: new VirtioNet(backend, mac),
      memory: c.resolve(Tokens.GuestMemory),
      ioevents: c.resolve(Tokens.IoEvents),
      logger: c.resolve(Tokens.Logger),
    });
    this.machine.addPciDevice(this.net);
  }

  get serial(): string {
    return this.text;
  }

  start(): void {
    this.result = this.machine.run();
  }

  send(line: string): void {
    this.input.write(`${line}\n`);
  }

  /** Waits for a line matching `re` printed after `from` characters of output. */
  async line(re: RegExp, from = 0, ms = 30_000): Promise<RegExpExecArray> {
    let m: RegExpExecArray | null = null;
    const seen = () => (m = re.exec(this.text.slice(from))) !== null || this.text.includes("FAIL");
    await until(seen, ms).catch(() => {});
    if (!m) throw new Error(`no ${re} from the guest; it printed:\n${this.text}`);
    return m;
  }

  private ended: Promise<MachineResult> | undefined;

  /** Sends "q" and waits for the guest to exit, then closes the machine and the device (once). */
  quit(): Promise<MachineResult> {
    this.ended ??= this.end();
    return this.ended;
  }

  private async end(): Promise<MachineResult> {
    this.send("q");
    const timer = setTimeout(() => this.machine.stop("test timeout"), 30_000);
    try {
      return await this.result!;
    } finally {
      clearTimeout(timer);
      this.machine.close();
      await this.net.close();
    }
  }
}

describe.skipIf(!kvm.ok)("the virtio-net benchmark guest under KVM (so the bench cannot silently rot)", () => {
  let dir = "";
  let elf = "";
  let guests: BenchGuest[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "vmm-net-bench-guest-"));
    elf = await buildGuest("virtio-net-bench", { format: "elf", source: join(here, "..", "bench", "guest", "virtio-net-bench.c") });
    guests = [];
  });
  afterEach(async () => {
    for (const g of guests) if (g.result) await g.quit().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  async function boot(backend: NetBackend, mac: Mac): Promise<BenchGuest> {
    const g = new BenchGuest(elf, backend, mac);
    guests.push(g);
    g.start();
    await g.line(/ready qsz 256 mac (\S+)\n/);
    return g;
  }

  // One size between two VMs: both share this thread here, and with 1514-byte frames the case took 35-40 s on this
  // project's emulated KVM (the bench runs that size between two processes); the host-peer tests take both sizes.
  /** The receiver's and the sender's backends of a link between two VMs. */
  const links: Record<string, () => Promise<[NetBackend, NetBackend]>> = {
    "the socket backend (JS thread)": async () => {
      const path = join(dir, "link.sock");
      const rx = await SocketNetBackend.open(path, "listen");
      const tx = await SocketNetBackend.open(path, "connect");
      await until(() => rx.connected);
      return [rx, tx];
    },
    "the datagram backend (data-plane workers)": async () => {
      const [a, b] = [join(dir, "rx.sock"), join(dir, "tx.sock")];
      return [DgramNetBackend.open(a, b), DgramNetBackend.open(b, a)];
    },
  };

  it.each(Object.keys(links))("two VMs over %s: every 64-byte frame the sender transmits arrives with its length, pattern and order", async (link) => {
    const size = 64;
    const [rxBackend, txBackend] = await links[link]!();
    const receiver = await boot(rxBackend, RECEIVER);
    const sender = await boot(txBackend, SENDER);
    // Fewer frames than the receiver's buffers: none may be dropped. (Both VMs share this thread, so each round
    // trip waits for the other's time slice; the transmit test below reuses slots.)
    receiver.send(`r 120 ${size} c`);
    await receiver.line(/start\n/);
    sender.send(`t ${size} 120`);
    const sent = await sender.line(/done (\d+) (\d+) (\d+)\n/, 0, 60_000);
    expect(sent[1]).toBe("120");
    expect(Number(sent[2])).toBeLessThan(Number(sent[3])); // waiting ticks within the case's
    const done = await receiver.line(/first\ndone (\d+) (\d+) (\d+) (\d+) (\d+)\n/, 0, 60_000);
    expect(done.slice(1, 3)).toEqual(["120", "0"]);
    const [waiting, active, total] = done.slice(3).map(Number);
    expect(waiting).toBeLessThan(active!); // idle between bursts, within the first-to-last frame time
    expect(active).toBeLessThanOrEqual(total!);
    // The machines' RAM is a memfd: the datagram backend's queues ran on their workers, the socket's on this thread.
    const onWorkers = rxBackend instanceof DgramNetBackend;
    expect(sender.net.counters().queue1WorkerRequests).toBe(onWorkers ? 120 : undefined);
    expect(receiver.net.counters().queue0WorkerRequests).toBe(onWorkers ? 120 : undefined);
    for (const g of [sender, receiver]) expect(await g.quit()).toMatchObject({ status: 0, reason: "debug-exit" });
  }, 150_000);

  it.each([
    [100, "the ring full"],
    [1514, "the ring full"],
    [64, "one in flight"],
  ])("transmit %i-byte frames, %s: on the wire in the driver's layout, sequence numbers 0..n-1 through reused slots, pattern intact", async (size, depth) => {
    const path = join(dir, "peer.sock");
    const peer = await SocketNetBackend.open(path, "listen");
    const frames: Uint8Array[] = [];
    peer.open((f) => frames.push(f));
    const guest = await boot(await SocketNetBackend.open(path, "connect"), SENDER);
    guest.send(`t ${size} 260${depth === "one in flight" ? " 1" : ""}`);
    await guest.line(/done 260 \d+ \d+\n/);
    await until(() => frames.length === 260);
    frames.forEach((f, seq) => {
      expect(f.length).toBe(size);
      expect([...f.subarray(0, 14)]).toEqual([...RECEIVER, ...SENDER, 0x88, 0xb5]);
      expect([...f]).toEqual([...benchFrame(size, seq)]);
    });
    await peer.close();
  }, 90_000);

  it.each([200, 1514])("receive %i-byte frames with checks: counts a wrong length, a wrong pattern byte, a wrong destination and a repeated sequence number as bad; 's' ends it", async (size) => {
    const path = join(dir, "peer.sock");
    const peer = await SocketNetBackend.open(path, "listen");
    peer.open(() => {});
    const guest = await boot(await SocketNetBackend.open(path, "connect"), RECEIVER);
    await until(() => peer.connected);
    const from = guest.serial.length;
    guest.send(`r 1000 ${size} c`);
    await guest.line(/start\n/, from);
    const corrupt = benchFrame(size, 3);
    corrupt[150] = corrupt[150]! ^ 1;
    const elsewhere = benchFrame(size, 5);
    elsewhere[5] = 9;
    const frames = [benchFrame(size, 0), benchFrame(size, 1), benchFrame(size - 1, 2), corrupt, benchFrame(size, 4), elsewhere, benchFrame(size, 4), benchFrame(size, 7)];
    for (const f of frames) peer.send(f);
    await guest.line(/first\n/, from);
    guest.send("s"); // 1000 frames never come: the guest ends once its link has been quiet
    const done = await guest.line(/done (\d+) (\d+) \d+ \d+ \d+\n/, from);
    expect(done.slice(1, 3)).toEqual([String(frames.length), "4"]);
    expect(await guest.quit()).toMatchObject({ status: 0, reason: "debug-exit" });
    await peer.close();
  }, 90_000);

  it("refuses a frame size outside 60..1514 with a clear failure", async () => {
    const guest = await boot(await SocketNetBackend.open(join(dir, "none.sock"), "listen"), SENDER);
    guest.send("t 1515 10");
    await until(() => guest.serial.includes("FAIL bad command 't 1515 10'"));
    const result = await guest.quit();
    expect(result.status).toBe(12);
  }, 90_000);
});
