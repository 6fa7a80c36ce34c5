import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryLogger, Tokens } from "@vmm/core";
import { kvmAvailability } from "@vmm/kvm-native";
import { Machine } from "@vmm/machine";
import { describe, expect, it } from "vitest";
import { FileImage } from "../src/backends/file-image.js";
import { VirtioBlk } from "../src/devices/blk.js";
import { VirtioRng } from "../src/devices/rng.js";
import { VirtioPciFunction } from "../src/transport/virtio-pci.js";
import { buildVirtioGuest } from "./kvm-guest.js";

const kvm = kvmAvailability();
if (!kvm.ok) {
  console.warn(`\n${"!".repeat(78)}\n!! @vmm/device-virtio: KVM guest tests SKIPPED: ${kvm.reason}\n${"!".repeat(78)}\n`);
}

describe.skipIf(!kvm.ok)("virtio devices under KVM (a freestanding guest driver)", () => {
  it("rng via ioeventfd + MSI-X, BAR move moves the doorbell, blk read/write/flush/get-id/IOERR", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vmm-virtio-kvm-"));
    try {
      const image = join(dir, "disk.img");
      await writeFile(image, Uint8Array.from({ length: 16 * 512 }, (_, i) => (i * 13 + 7) & 0xff));
      const elf = await buildVirtioGuest("virtio-smoke");
      const logger = new MemoryLogger();
      let serial = "";
      const machine = new Machine({
        memoryMiB: 64,
        logger,
        kernel: { kind: "elf", path: elf },
        serial: { output: (b) => void (serial += Buffer.from(b).toString("latin1")) },
      });
      const c = machine.container;
      const common = { memory: c.resolve(Tokens.GuestMemory), ioevents: c.resolve(Tokens.IoEvents), logger: c.resolve(Tokens.Logger) };
      const rng = new VirtioPciFunction({ name: "virtio-rng0", device: new VirtioRng(), ...common });
      const blkDevice = new VirtioBlk(await FileImage.open(image), { serial: "vmm-kvm-disk" });
      const blk = new VirtioPciFunction({ name: "virtio-blk0", device: blkDevice, ...common });
      machine.addPciDevice(rng);
      machine.addPciDevice(blk);
      const timer = setTimeout(() => machine.stop("test timeout"), 60_000);
      let result;
      try {
        result = await machine.run();
      } finally {
        clearTimeout(timer);
        machine.close();
        await blk.close();
      }
      expect(serial).toContain("ok blk: read past the end -> IOERR");
      expect({ status: result.status, reason: result.reason, serial }).toMatchObject({ status: 0, reason: "debug-exit" });
      const after = await readFile(image);
      expect([...after.subarray(512, 1024)]).toEqual(Array.from({ length: 512 }, (_, i) => (i ^ 0xa5) & 0xff));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it("legacy driver on a transitional rng: PFN queue, port doorbell with datamatch, INTx + ISR, I/O BAR move", async () => {
    const elf = await buildVirtioGuest("virtio-legacy");
    let serial = "";
    const machine = new Machine({
      memoryMiB: 64,
      logger: new MemoryLogger(),
      kernel: { kind: "elf", path: elf },
      serial: { output: (b) => void (serial += Buffer.from(b).toString("latin1")) },
    });
    const c = machine.container;
    const rng = new VirtioPciFunction({
      name: "virtio-rng0",
      device: new VirtioRng(),
      transport: "transitional",
      memory: c.resolve(Tokens.GuestMemory),
      ioevents: c.resolve(Tokens.IoEvents),
      logger: c.resolve(Tokens.Logger),
    });
    machine.addPciDevice(rng);
    const timer = setTimeout(() => machine.stop("test timeout"), 60_000);
    let result;
    try {
      result = await machine.run();
    } finally {
      clearTimeout(timer);
      machine.close();
      await rng.close();
    }
    expect(serial).toContain("ok legacy rng: reset");
    expect({ status: result.status, reason: result.reason, serial }).toMatchObject({ status: 0, reason: "debug-exit" });
  }, 90_000);
});
