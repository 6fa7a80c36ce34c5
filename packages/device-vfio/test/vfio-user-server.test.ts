// The client end to end against tools/vfio-user-server (a separate process written from the same spec by someone
// else): config space, region info with sparse mmap areas, BAR accesses, the test engine's DMA through memfd-backed
// memory and through DMA_READ/WRITE messages, eventfd interrupts, reset and a server that dies. Skips loudly when
// the server is not built (pnpm --filter @vmm/vfio-user-server build).
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, ftruncateSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { EventFd, hostIoAvailability, mapFd, memfdCreate } from "@vmm/host-io";
import { afterEach, describe, expect, it } from "vitest";
import { VfioBackendLostError, VfioIrq, VfioRegion, type VfioDmaRegion } from "../src/backend/backend.js";
import { VfioUserClient } from "../src/vfio-user/client.js";

const serverCli = resolve(dirname(fileURLToPath(import.meta.url)), "../../../tools/vfio-user-server/dist/cli.js");
const hostIo = hostIoAvailability();
const skipReason = !existsSync(serverCli)
  ? `${serverCli} is not built (pnpm --filter @vmm/vfio-user-server build)`
  : !hostIo.ok
    ? `@vmm/host-io cannot be used: ${hostIo.reason}`
    : undefined;
if (skipReason) {
  const rule = "!".repeat(78);
  console.warn(`\n${rule}\nSKIPPING the vfio-user end-to-end tests: ${skipReason}\n${rule}\n`);
}

// The test engine (contract in the server's device spec): 32-bit registers at these offsets.
const Engine = {
  MAGIC: 0x00, ID: 0x04, SRC_LO: 0x08, SRC_HI: 0x0c, DST_LO: 0x10, DST_HI: 0x14, LEN: 0x18, OP: 0x1c,
  PATTERN: 0x20, VECTOR: 0x24, DOORBELL: 0x28, STATUS: 0x2c, COUNT: 0x30, IRQS: 0x34, SCRATCH: 0x38, CONTROL: 0x3c,
} as const;
const STATUS_DONE = 1;
const STATUS_ERROR = 2;
const STATUS_IRQ = 4;

type DeviceName = "rtl8168" | "nvme" | "subpage-rom" | "intx-only";
const engineAt: Record<DeviceName, { region: number; base: number }> = {
  rtl8168: { region: VfioRegion.BAR2, base: 0x800 },
  nvme: { region: VfioRegion.BAR0, base: 0x1000 },
  "subpage-rom": { region: VfioRegion.BAR0, base: 0x40 },
  "intx-only": { region: VfioRegion.BAR0, base: 0 },
};

interface Session {
  readonly client: VfioUserClient;
  readonly path: string;
  readonly engine: { read(reg: number): number; write(reg: number, value: number): void };
  readonly output: () => string;
}

const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

async function startServer(device: DeviceName, extra: string[] = []): Promise<Session> {
  const dir = mkdtempSync(join(tmpdir(), "vfio-user-e2e-"));
  const path = join(dir, `${device}.sock`);
  const child: ChildProcess = spawn(process.execPath, [serverCli, "--socket", path, "--device", device, ...extra], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  });
  const deadline = Date.now() + 10_000;
  let client: VfioUserClient | undefined;
  while (!client) {
    if (child.exitCode !== null) throw new Error(`vfio-user-server --device ${device} exited (${child.exitCode}): ${output}`);
    if (existsSync(path)) {
      try {
        client = VfioUserClient.connect(path, { timeoutMs: 5000 });
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
      }
    }
    if (Date.now() > deadline) throw new Error(`vfio-user-server --device ${device} did not listen at ${path} within 10 s: ${output}`);
    await sleep(25);
  }
  const connected = client;
  cleanups.push(() => connected.close());
  const { region, base } = engineAt[device];
  const engine = {
    read: (reg: number) => new DataView(connected.read(region, base + reg, 4).buffer).getUint32(0, true),
    write: (reg: number, value: number) => {
      const data = new Uint8Array(4);
      new DataView(data.buffer).setUint32(0, value >>> 0, true);
      connected.write(region, base + reg, data);
    },
  };
  return { client: connected, path, engine, output: () => output };
}

/** Guest memory backed by a memfd, as the VMM's RAM is: the server maps the fd. */
function memfdMemory(iova: number, size: number): VfioDmaRegion {
  const fd = memfdCreate("e2e-ram");
  ftruncateSync(fd, size);
  const bytes = mapFd(fd, 0, size, { writable: true });
  cleanups.push(() => closeSync(fd));
  return { iova, size, fd, fileOffset: 0, bytes, readable: true, writable: true };
}

const config32 = (client: VfioUserClient, offset: number) => new DataView(client.read(VfioRegion.CONFIG, offset, 4).buffer).getUint32(0, true);

/** Runs the engine: LEN bytes from SRC through OP to DST. */
function runDma(session: Session, src: number, dst: number, length: number, op: number, doorbell = 3): number {
  const { engine } = session;
  engine.write(Engine.STATUS, STATUS_DONE | STATUS_ERROR | STATUS_IRQ);
  engine.write(Engine.SRC_LO, src);
  engine.write(Engine.SRC_HI, 0);
  engine.write(Engine.DST_LO, dst);
  engine.write(Engine.DST_HI, 0);
  engine.write(Engine.LEN, length);
  engine.write(Engine.OP, op);
  engine.write(Engine.DOORBELL, doorbell);
  return engine.read(Engine.STATUS);
}

describe.skipIf(skipReason !== undefined)("vfio-user client against tools/vfio-user-server", () => {
  it("reads an rtl8168's config space and region layout, and maps its sparse BAR", async () => {
    const { client } = await startServer("rtl8168");
    const device = client.deviceInfo();
    expect(device.flags & 2).toBe(2); // VFIO_DEVICE_FLAGS_PCI
    expect(device.numRegions).toBeGreaterThanOrEqual(9);
    expect(config32(client, 0x00)).toBe(0x8168_10ec);
    expect(config32(client, 0x08)).toBe(0x0200_0015);
    expect(client.read(VfioRegion.CONFIG, 0x34, 1)[0]).toBe(0x40);
    expect(client.read(VfioRegion.CONFIG, 0x100, 2)).toEqual(Uint8Array.of(0x01, 0x00)); // AER at 0x100

    const bar0 = client.regionInfo(VfioRegion.BAR0);
    expect(bar0).toMatchObject({ index: 0, size: 256 });
    expect(bar0.mmap).toBeUndefined();
    const bar2 = client.regionInfo(VfioRegion.BAR2);
    expect(bar2).toMatchObject({ size: 4096 });
    expect(bar2.mmap).toBeUndefined();
    const bar4 = client.regionInfo(VfioRegion.BAR4);
    expect(bar4.size).toBe(16 * 1024);
    expect(bar4.mmap?.areas).toEqual([{ offset: 0x1000, size: 0x3000 }]);
    // The fd is mappable where the areas say.
    const view = mapFd(bar4.mmap!.fd, bar4.mmap!.offset + 0x1000, 0x3000, { writable: true });
    expect(view.length).toBe(0x3000);
    expect(client.irqInfo(VfioIrq.MSIX).count).toBe(4);
    expect(client.irqInfo(VfioIrq.MSI).count).toBe(1);
  });

  it("shares an nvme's mappable memory: bytes written through the mapping read back with REGION_READ", async () => {
    const { client } = await startServer("nvme");
    expect(client.regionInfo(VfioRegion.BAR0).mmap?.areas).toEqual([{ offset: 0, size: 0x1000 }]);
    const bar3 = client.regionInfo(VfioRegion.BAR3);
    expect(bar3.size).toBe(1024 * 1024);
    const covered = bar3.mmap!.areas.reduce((sum, area) => sum + area.size, 0);
    expect(covered).toBe(bar3.size);
    const view = mapFd(bar3.mmap!.fd, bar3.mmap!.offset, bar3.size, { writable: true });
    view.set([1, 2, 3, 4], 0x8_0000);
    expect(client.read(VfioRegion.BAR3, 0x8_0000, 4)).toEqual(Uint8Array.of(1, 2, 3, 4));
    client.write(VfioRegion.BAR3, 0x10, Uint8Array.of(9, 8));
    expect(view.subarray(0x10, 0x12)).toEqual(Uint8Array.of(9, 8));
  });

  it("reads and writes the test engine's registers through REGION_READ/WRITE", async () => {
    const session = await startServer("rtl8168");
    const { engine } = session;
    expect(engine.read(Engine.MAGIC)).toBe(0x4554_5556);
    expect(engine.read(Engine.ID)).toBe(1);
    engine.write(Engine.SCRATCH, 0xcafe_f00d);
    expect(engine.read(Engine.SCRATCH)).toBe(0xcafe_f00d);
  });

  for (const [what, extra, withFd] of [
    ["memfd-backed memory the server maps", [], true],
    ["DMA_READ/WRITE messages (--dma messages)", ["--dma", "messages"], true],
    ["memory without a file (messages only)", [], false],
  ] as const) {
    it(`runs the engine's DMA through ${what}`, async () => {
      const session = await startServer("nvme", [...extra]);
      const ram = withFd
        ? memfdMemory(0x10_0000, 0x10000)
        : { iova: 0x10_0000, size: 0x10000, fd: -1, fileOffset: 0, bytes: new Uint8Array(0x10000), readable: true, writable: true };
      session.client.dmaMap(ram);
      const source = Uint8Array.from({ length: 3000 }, (_, i) => (i * 13 + 5) & 0xff);
      ram.bytes.set(source, 0x100);
      // Invert 3000 bytes from 0x100100 to 0x108000.
      const status = runDma(session, 0x10_0100, 0x10_8000, source.length, 1);
      expect(status & (STATUS_DONE | STATUS_ERROR)).toBe(STATUS_DONE);
      expect(ram.bytes.subarray(0x8000, 0x8000 + source.length)).toEqual(source.map((b) => b ^ 0xff));
      // Add PATTERN's low byte.
      session.engine.write(Engine.PATTERN, 0x0103);
      runDma(session, 0x10_0100, 0x10_a000, 16, 2);
      expect(ram.bytes.subarray(0xa000, 0xa010)).toEqual(source.subarray(0, 16).map((b) => (b + 3) & 0xff));
      // A DMA outside the mapped memory is the device's error, not the VMM's.
      expect(runDma(session, 0x50_0000, 0x10_0000, 16, 0) & STATUS_ERROR).toBe(STATUS_ERROR);
      expect(session.engine.read(Engine.COUNT)).toBeGreaterThanOrEqual(2);
      session.client.dmaUnmap(0x10_0000, 0x10000);
      expect(runDma(session, 0x10_0100, 0x10_8000, 16, 0) & STATUS_ERROR).toBe(STATUS_ERROR);
    });
  }

  it("signals MSI-X vectors through the eventfds SET_IRQS passed", async () => {
    const session = await startServer("nvme");
    const { client, engine } = session;
    const vectors = client.irqInfo(VfioIrq.MSIX).count;
    expect(vectors).toBe(8);
    const fds = Array.from({ length: vectors }, () => new EventFd());
    cleanups.push(() => fds.forEach((fd) => fd.close()));
    client.setIrqs({ action: "trigger", index: VfioIrq.MSIX, start: 0, fds: fds.map((fd) => fd.fd) });
    engine.write(Engine.VECTOR, 5);
    engine.write(Engine.DOORBELL, 2);
    // The server signals before it answers the doorbell write.
    expect(fds.map((fd) => fd.read())).toEqual([null, null, null, null, null, 1n, null, null]);
    client.setIrqs({ action: "trigger-disable", index: VfioIrq.MSIX });
  });

  it("raises INTx through its eventfd, automasked until UNMASK", async () => {
    const session = await startServer("intx-only");
    const { client, engine } = session;
    expect(client.irqInfo(VfioIrq.INTX).count).toBe(1);
    const trigger = new EventFd();
    cleanups.push(() => trigger.close());
    client.setIrqs({ action: "trigger", index: VfioIrq.INTX, start: 0, fds: [trigger.fd] });
    engine.write(Engine.DOORBELL, 2);
    expect(trigger.read()).toBe(1n);
    expect(engine.read(Engine.STATUS) & STATUS_IRQ).toBe(STATUS_IRQ);
    // Masked after the trigger: another interrupt is not signalled...
    engine.write(Engine.DOORBELL, 2);
    expect(trigger.read()).toBeNull();
    // ...until an unmask with the line still asserted.
    client.setIrqs({ action: "unmask", index: VfioIrq.INTX, start: 0, count: 1 });
    expect(trigger.read()).toBe(1n);
    engine.write(Engine.STATUS, STATUS_IRQ);
    expect(engine.read(Engine.STATUS) & STATUS_IRQ).toBe(0);
  });

  it("reads the sub-page device's option ROM, split by the server's max_data_xfer_size", async () => {
    const { client } = await startServer("subpage-rom");
    const rom = client.regionInfo(VfioRegion.ROM);
    expect(rom.size).toBe(64 * 1024);
    const image = client.read(VfioRegion.ROM, 0, rom.size);
    expect([image[0], image[1]]).toEqual([0x55, 0xaa]);
    expect(image[0x100]).toBe((0x100 * 7 + 3) & 0xff);
    expect(image.reduce((sum, b) => (sum + b) & 0xff, 0)).toBe(0);
    expect(client.regionInfo(VfioRegion.BAR0)).toMatchObject({ size: 256 });
    expect(client.regionInfo(VfioRegion.BAR0).mmap).toBeUndefined();
  });

  it("resets the device when it says it can", async () => {
    const session = await startServer("rtl8168");
    session.engine.write(Engine.SCRATCH, 0x1234);
    const canReset = (session.client.deviceInfo().flags & 1) !== 0;
    expect(session.client.reset()).toBe(canReset);
    if (canReset) expect(session.engine.read(Engine.SCRATCH)).toBe(0);
  });

  it("reports a server that exits as lost, naming its socket", async () => {
    const session = await startServer("rtl8168");
    const lost = new Promise<string>((resolve) => session.client.onLost(resolve));
    try {
      session.engine.write(Engine.CONTROL, 0xdead_0001);
    } catch (error) {
      expect(error).toBeInstanceOf(VfioBackendLostError);
    }
    expect(await lost).toBe(`vfio-user server ${session.path} closed the connection`);
    expect(() => session.engine.read(Engine.MAGIC)).toThrowError(VfioBackendLostError);
  });
});
