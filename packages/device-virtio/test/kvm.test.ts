import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kvmAvailability } from "@vmm/kvm-native";
import type { Machine } from "@vmm/machine";
import { kvmTestGate } from "@vmm/test-support";
import { describe, expect, it } from "vitest";
import { FileImage } from "../src/backends/file-image.js";
import { SocketNetBackend } from "../src/backends/net-socket.js";
import { VirtioBlk } from "../src/devices/blk.js";
import { VirtioNet } from "../src/devices/net.js";
import { VirtioRng } from "../src/devices/rng.js";
import type { VirtioPciFunction } from "../src/transport/virtio-pci.js";
import { until } from "./harness.js";
import { buildVirtioGuest, VirtioGuestVm } from "./kvm-guest.js";

const kvm = kvmTestGate("@vmm/device-virtio", { what: "KVM guest tests", check: kvmAvailability });

describe.skipIf(!kvm.ok)("virtio devices under KVM (a freestanding guest driver)", () => {
  it("rng via ioeventfd + MSI-X, BAR move moves the doorbell, blk read/write/flush/get-id/IOERR", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmm-virtio-kvm-"));
    try {
      const image = join(dir, "disk.img");
      await writeFile(image, Uint8Array.from({ length: 16 * 512 }, (_, i) => (i * 13 + 7) & 0xff));
      const vm = new VirtioGuestVm(await buildVirtioGuest("virtio-smoke"));
      const rng = vm.addVirtio("virtio-rng0", new VirtioRng());
      const blk = vm.addVirtio("virtio-blk0", new VirtioBlk(await FileImage.open(image), { serial: "vmm-kvm-disk" }));
      const result = await vm.run(60_000, [blk]);
      const serial = vm.serial;
      expect(serial).toContain("ok rng: held while Bus Master Enable was clear, served once set");
      expect(serial).toContain("ok blk: read past the end -> IOERR");
      expect({ status: result.status, reason: result.reason, serial }).toMatchObject({ status: 0, reason: "debug-exit" });
      // Both devices ran on their data-plane workers (the machine's RAM is a memfd); rng's MSI-X vector through its irqfd.
      expect(rng.transport.dataPlane(0)!.stats.completed).toBeGreaterThan(0);
      expect(rng.transport.dataPlane(0)!.stats.irqfdSignals).toBeGreaterThan(0);
      expect(blk.transport.dataPlane(0)!.stats.completed).toBeGreaterThan(0);
      const after = await readFile(image);
      expect([...after.subarray(512, 1024)]).toEqual(Array.from({ length: 512 }, (_, i) => (i ^ 0xa5) & 0xff));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it("legacy driver on a transitional rng: PFN queue, port doorbell with datamatch, INTx + ISR, I/O BAR move", async () => {
    const vm = new VirtioGuestVm(await buildVirtioGuest("virtio-legacy"));
    const rng = vm.addVirtio("virtio-rng0", new VirtioRng(), "transitional");
    const result = await vm.run(60_000, [rng]);
    const serial = vm.serial;
    expect(serial).toContain("ok legacy rng: reset");
    expect({ status: result.status, reason: result.reason, serial }).toMatchObject({ status: 0, reason: "debug-exit" });
    // The legacy queue runs on the worker too (its port doorbell through the JS thread); INTx goes back to the JS thread.
    const stats = rng.transport.dataPlane(0)!.stats;
    expect(stats.completed).toBeGreaterThan(0);
    expect(stats.handbacks).toBeGreaterThan(0);
    expect(stats.irqfdSignals).toBe(0);
  }, 90_000);

  it("two VMs exchange frames through virtio-net over a Unix socket", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmm-virtio-net-"));
    const elf = await buildVirtioGuest("virtio-net-pingpong");
    const path = join(dir, "link.sock");
    const vms: { machine: Machine; net: VirtioPciFunction; backend: SocketNetBackend; serial: () => string }[] = [];
    try {
      for (const last of [1, 2]) {
        const backend = await SocketNetBackend.open(path);
        const vm = new VirtioGuestVm(elf, { name: `vm${last}` });
        const net = vm.addVirtio("virtio-net0", new VirtioNet(backend, [0x52, 0x54, 0, 0, 0, last]));
        vms.push({ machine: vm.machine, net, backend, serial: () => vm.serial });
      }
      await until(() => vms.every((v) => v.backend.connected));
      const timer = setTimeout(() => vms.forEach((v) => v.machine.stop("test timeout")), 60_000);
      const results = await Promise.all(vms.map((v) => v.machine.run()));
      clearTimeout(timer);
      expect(vms[0]!.serial()).toContain("ok got 'pong 2'");
      expect(vms[1]!.serial()).toContain("ok got 'ping 2'");
      results.forEach((r, i) => expect({ status: r.status, serial: vms[i]!.serial() }).toMatchObject({ status: 0 }));
    } finally {
      for (const v of vms) {
        v.machine.close();
        await v.net.close();
      }
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
