import { Tokens, type IoEventRegistry } from "@vmm/core";
import { kvmAvailability } from "@vmm/kvm-native";
import { kvmTestGate } from "@vmm/test-support";
import { describe, expect, it } from "vitest";
import { type BlockBackend, MemoryBlockBackend } from "../src/backends/block.js";
import type { IoEventFdRegistry } from "../src/dataplane/api.js";
import { VirtioBlk } from "../src/devices/blk.js";
import { runBenchGuest } from "./bench-guest.js";
import { closeMemfds, MemfdBlockBackend } from "./memfd-ram.js";

const kvm = kvmTestGate("@vmm/device-virtio", { what: "benchmark guest test", check: kvmAvailability });

/** An in-memory disk that records every read and how many were in flight at once (reads finish a turn later). */
class RecordingDisk extends MemoryBlockBackend {
  readonly reads: Array<{ position: number; length: number }> = [];
  inFlight = 0;
  maxInFlight = 0;
  override async read(buffer: Uint8Array, position: number): Promise<void> {
    this.reads.push({ position, length: buffer.length });
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    await new Promise((resolve) => setImmediate(resolve));
    this.inFlight--;
    return super.read(buffer, position);
  }
}

const DISK = 1 << 20;
/** The read the guest completes before it prints "ready" (so a data-plane thread is up before any case). */
const WARM_UP = { position: 0, length: 512 };

/** Boots the bench guest on a fresh machine, sends it `command` once it is ready, and collects its "done" line. */
async function runBlkGuest<D extends BlockBackend = RecordingDisk>(command: string, options: { disk?: D; eventFds?: boolean } = {}) {
  const disk = (options.disk ?? new RecordingDisk(new Uint8Array(DISK), true)) as D;
  let registered = 0;
  const { result, serial, fn: blk } = await runBenchGuest("virtio-blk-bench", command, {
    name: "virtio-blk0",
    device: new VirtioBlk(disk),
    // The machine's registry registers a worker's eventfd in KVM (counted here); without eventFds, a registry that
    // cannot, so the JS thread sees every doorbell.
    ioevents: (machine) => {
      const base = machine.container.resolve(Tokens.IoEvents) as IoEventFdRegistry;
      const forwarding: IoEventRegistry = { add: (r, n) => base.add(r, n) };
      const direct: IoEventFdRegistry = { ...forwarding, addEventFd: (r, fd) => (registered++, base.addEventFd(r, fd)) };
      return options.eventFds ? direct : forwarding;
    },
  });
  return { result, serial, disk, blk, registered: () => registered };
}

describe.skipIf(!kvm.ok)("the virtio-blk benchmark guest under KVM (so the bench cannot silently rot)", () => {
  it("QD1 sequential 64 KiB: every request completes OK, one at a time, in disk order", async () => {
    const { result, serial, disk } = await runBlkGuest("s 65536 1 20");
    expect(serial).toContain("done 20 0 0 0\n"); // untimed: no TSC figures
    expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
    expect(disk.maxInFlight).toBe(1);
    // The warm-up read before "ready", then 16 blocks of 64 KiB on the disk: the guest wraps around.
    expect(disk.reads).toEqual([WARM_UP, ...Array.from({ length: 20 }, (_, i) => ({ position: (i % 16) * 65536, length: 65536 }))]);
  }, 90_000);

  it("QD32 random 4 KiB: every request completes OK with many in flight, all aligned reads inside the disk", async () => {
    const { result, serial, disk } = await runBlkGuest("r 4096 32 100");
    expect(serial).toContain("done 100 0 0 0\n");
    expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
    expect(disk.reads).toHaveLength(101);
    expect(disk.reads[0]).toEqual(WARM_UP);
    const reads = disk.reads.slice(1);
    expect(disk.maxInFlight).toBeGreaterThan(1);
    expect(disk.maxInFlight).toBeLessThanOrEqual(32);
    for (const r of reads) expect(r.position % 4096 === 0 && r.length === 4096 && r.position < DISK).toBe(true);
    expect(new Set(reads.map((r) => r.position)).size).toBeGreaterThan(50);
  }, 90_000);

  it.each([
    ["s 65536 1 20 t", 20],
    ["r 4096 32 100 t", 100],
  ])("'%s' on the worker data plane, the doorbell's eventfd registered in KVM: the worker serves every request", async (command, n) => {
    try {
      const bytes = Uint8Array.from({ length: DISK }, (_, i) => (i * 13) & 0xff);
      const { result, serial, blk, registered } = await runBlkGuest(command, { disk: new MemfdBlockBackend(bytes, true), eventFds: true });
      const done = /done (\d+) (\d+) (\d+) (\d+)\n/.exec(serial);
      expect(done?.slice(1, 3)).toEqual([String(n), "0"]);
      // Timed: fewer ticks waiting for the device than the case's. How many depends on the host's scheduling
      // (a vCPU preempted right after its doorbell may find the request served), so zero is possible.
      expect(Number(done![4])).toBeGreaterThan(0);
      expect(Number(done![3])).toBeLessThan(Number(done![4]));
      expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
      expect(registered()).toBe(1);
      expect(blk.transport.dataPlane(0)!.stats.completed).toBe(n + 1); // and the warm-up
    } finally {
      closeMemfds();
    }
  }, 90_000);

  it("rejects a depth the queue cannot hold with a clear failure", async () => {
    const { result, serial } = await runBlkGuest("s 65536 64 10");
    expect(serial).toContain("FAIL bad command");
    expect(result.status).not.toBe(0);
  }, 90_000);
});
