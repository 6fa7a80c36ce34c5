import { Tokens } from "@vmm/core";
import { kvmAvailability } from "@vmm/kvm-native";
import type { Machine } from "@vmm/machine";
import { kvmTestGate } from "@vmm/test-support";
import { describe, expect, it } from "vitest";
import { VirtioRng } from "../src/devices/rng.js";
import { runBenchGuest } from "./bench-guest.js";

const kvm = kvmTestGate("@vmm/device-virtio", { what: "virtio-rng benchmark guest test", check: kvmAvailability });
/** Where the guest driver's request buffers start (virtio-rng-bench.c's DATA): slot s at DATA + s * block. */
const DATA = 0x1000000;

/**
 * Boots the rng bench guest on a fresh machine (memfd-backed RAM, the machine's own ioevent registry: what
 * `vmm run` assembles), sends it `command` once it is ready, and copies `bytes` of its buffers before the VM goes.
 */
async function runRngGuest(command: string, plane: "main" | "worker", bytes = 0) {
  const rng = { name: "virtio-rng0", device: new VirtioRng({ dataplane: plane }) };
  const buffers = (machine: Machine) => Uint8Array.from(machine.container.resolve(Tokens.GuestMemory).view(DATA, bytes));
  const run = await runBenchGuest("virtio-rng-bench", command, rng, buffers);
  return { result: run.result, serial: run.serial, buffers: run.seen, worker: run.fn.transport.dataPlane(0) };
}

describe.skipIf(!kvm.ok)("the virtio-rng benchmark guest under KVM (so the bench cannot silently rot)", () => {
  it.each([
    ["main", "4096 1 20"],
    ["worker", "4096 1 20"],
    ["main", "64 32 200"],
    ["worker", "64 32 200 t"],
  ] as const)("on the %s data plane, '%s': every request is answered in full with random bytes", async (plane, command) => {
    const [block, depth, requests] = command.split(" ").map(Number) as [number, number, number];
    const { result, serial, buffers, worker } = await runRngGuest(command, plane, block * depth);
    const done = /done (\d+) (\d+) (\d+) (\d+)\n/.exec(serial);
    expect(done?.slice(1, 3)).toEqual([String(requests), "0"]);
    if (command.endsWith(" t")) {
      // Timed: the case's ticks are counted, and the ticks spent waiting for the device are fewer.
      expect(Number(done![4])).toBeGreaterThan(0);
      expect(Number(done![3])).toBeLessThan(Number(done![4]));
    } else {
      expect(done?.slice(3)).toEqual(["0", "0"]);
    }
    expect(result).toMatchObject({ status: 0, reason: "debug-exit" });
    // The worker served every request and the guest's warm-up; on `main` there is none.
    if (plane === "worker") expect(worker!.stats.completed).toBe(requests + 1);
    else expect(worker).toBeUndefined();
    // RAM starts zeroed: each slot's buffer now holds CSPRNG bytes (no 16-byte run left at zero, many values).
    for (let s = 0; s < depth; s++) {
      const slot = buffers.subarray(s * block, (s + 1) * block);
      for (let at = 0; at < block; at += 16) expect(slot.subarray(at, at + 16).some((b) => b !== 0)).toBe(true);
      expect(new Set(slot).size).toBeGreaterThan(Math.min(200, block / 4));
    }
  }, 90_000);

  it("rejects a depth the queue cannot hold with a clear failure", async () => {
    const { result, serial } = await runRngGuest("64 65 10", "worker");
    expect(serial).toContain("FAIL bad command");
    expect(result.status).not.toBe(0);
  }, 90_000);
});
