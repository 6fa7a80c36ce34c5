import { readFile, writeFile } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { bit, Status } from "../src/constants.js";
import { type BlockBackend, MemoryBlockBackend } from "../src/backends/block.js";
import { FileImage } from "../src/backends/file-image.js";
import { type BlkOptions, BlkFeature, BlkStatus, BlkType, VirtioBlk } from "../src/devices/blk.js";
import type { Buf } from "./driver.js";
import { type ModernDriver, setupTransport, until } from "./harness.js";
import { closeMemfds, makeMemfdMemory, MemfdBlockBackend } from "./memfd-ram.js";
import { tempDirEach } from "./temp-dir.js";

const pattern = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

/** Posts a virtio-blk request: header, data buffers, status byte. Returns the data and status addresses. */
function request(d: ModernDriver, type: number, sector: bigint, dataLen: number, opts: { split?: boolean; data?: Uint8Array } = {}) {
  const hdr = d.alloc.alloc(16);
  d.mem.writeU32(hdr, type);
  d.mem.writeU32(hdr + 4, 0);
  d.mem.writeU64(hdr + 8, sector);
  const data = d.alloc.alloc(Math.max(dataLen, 1));
  if (opts.data) d.mem.write(data, opts.data);
  const status = d.alloc.alloc(1);
  d.mem.writeU8(status, 0xff);
  const device = type === BlkType.IN || type === BlkType.GET_ID;
  const bufs: Buf[] = opts.split
    ? [{ addr: hdr, len: 8 }, { addr: hdr + 8, len: 8 }]
    : [{ addr: hdr, len: 16 }];
  if (dataLen > 0) bufs.push({ addr: data, len: dataLen, write: device });
  bufs.push({ addr: status, len: 1, write: true });
  const head = d.rings[0]!.post(bufs);
  return { head, data, status };
}

class DelayedBackend extends MemoryBlockBackend {
  delays: number[] = [];
  override async read(buffer: Uint8Array, position: number): Promise<void> {
    await new Promise((r) => setTimeout(r, this.delays.shift() ?? 0));
    return super.read(buffer, position);
  }
}

/**
 * Both data planes run the same requests: `main` serves the queue on the JS thread through the backend's
 * promises; `worker` on a data-plane thread over memfd-backed RAM, with synchronous I/O on the disk's memfd.
 */
const PLANES = ["main", "worker"] as const;
type Plane = (typeof PLANES)[number];
const running: Array<{ shutdown(): void }> = [];
afterEach(() => {
  for (const t of running.splice(0)) t.shutdown();
  closeMemfds();
});

/** A disk holding `bytes` that the plane can use: memory for `main`, a memfd for `worker`. */
function diskFor(plane: Plane, bytes: Uint8Array, readonly = false): MemoryBlockBackend {
  return plane === "worker" ? new MemfdBlockBackend(bytes, readonly) : new MemoryBlockBackend(bytes, readonly);
}

function blkOn(plane: Plane, backend: BlockBackend = diskFor(plane, pattern(64 * 512)), options: BlkOptions = {}) {
  const device = new VirtioBlk(backend, { dataplane: plane, ...options });
  const t = setupTransport(device, 4 << 20, plane === "worker" ? makeMemfdMemory() : undefined);
  running.push(t.transport);
  t.driver.init();
  expect(t.transport.dataPlane(0) !== undefined).toBe(plane === "worker" && backend.fd !== undefined);
  return { ...t, device, backend, ring: t.driver.rings[0]! };
}

function blk(backend: BlockBackend = new MemoryBlockBackend(pattern(64 * 512)), options: BlkOptions = {}) {
  return blkOn("main", backend, options);
}

describe.each(PLANES)("virtio-blk (%s data plane)", (plane) => {
  const disk = (bytes: Uint8Array, readonly = false) => diskFor(plane, bytes, readonly);
  const blk = (backend?: BlockBackend, options: BlkOptions = {}) => blkOn(plane, backend, options);

  it("exposes capacity, size_max, seg_max and blk_size in its configuration", () => {
    const { driver } = blk(disk(new Uint8Array(4 * 1024 * 1024 + 100)));
    expect(driver.config(0, 4)).toBe(8192);
    expect(driver.config(4, 4)).toBe(0);
    expect(driver.config(8, 4)).toBe(65536);
    expect(driver.config(12, 4)).toBe(254);
    expect(driver.config(20, 4)).toBe(512);
  });

  it("reads sectors into device-writable buffers and completes with OK and the byte count", async () => {
    const { driver, ring, mem, sink } = blk();
    const r = request(driver, BlkType.IN, 3n, 1024, { split: true });
    driver.kick(0);
    await until(() => ring.usedIdx() === 1 && sink.level);
    expect(ring.takeUsed()).toEqual([{ id: r.head, len: 1025 }]);
    expect(mem.readU8(r.status)).toBe(BlkStatus.OK);
    expect([...mem.view(r.data, 1024)]).toEqual([...pattern(64 * 512).subarray(3 * 512, 5 * 512)]);
  });

  it("puts the status in the last writable byte when a zero-length buffer ends the chain", async () => {
    const { driver, ring, mem } = blk();
    const hdr = driver.alloc.alloc(16);
    mem.writeU32(hdr, BlkType.IN);
    mem.writeU64(hdr + 8, 2n);
    const data = driver.alloc.alloc(512);
    const status = driver.alloc.alloc(2);
    mem.writeU8(status, 0xff);
    mem.writeU8(status + 1, 0xee);
    const head = ring.post([
      { addr: hdr, len: 16 },
      { addr: data, len: 512, write: true },
      { addr: status, len: 1, write: true },
      { addr: status + 1, len: 0, write: true },
    ]);
    driver.kick(0);
    await until(() => ring.usedIdx() === 1);
    expect(ring.takeUsed()).toEqual([{ id: head, len: 513 }]);
    expect([mem.readU8(status), mem.readU8(status + 1)]).toEqual([BlkStatus.OK, 0xee]);
    expect([...mem.view(data, 512)]).toEqual([...pattern(64 * 512).subarray(2 * 512, 3 * 512)]);
  });

  it("writes sectors from device-readable buffers", async () => {
    const { driver, ring, mem, backend } = blk();
    const payload = pattern(512, 99);
    const r = request(driver, BlkType.OUT, 10n, 512, { data: payload });
    driver.kick(0);
    await until(() => ring.usedIdx() === 1);
    expect(ring.takeUsed()).toEqual([{ id: r.head, len: 1 }]);
    expect(mem.readU8(r.status)).toBe(BlkStatus.OK);
    expect([...(backend as MemoryBlockBackend).bytes.subarray(5120, 5632)]).toEqual([...payload]);
  });

  it("completes FLUSH with OK once the backend flushed", async () => {
    const { driver, ring, mem, backend } = blk();
    const r = request(driver, BlkType.FLUSH, 0n, 0);
    driver.kick(0);
    await until(() => ring.usedIdx() === 1);
    // The JS thread calls the backend's flush(); the worker fdatasyncs its fd (a memfd here: nothing to count).
    if (plane === "main") expect((backend as MemoryBlockBackend).flushes).toBe(1);
    expect(mem.readU8(r.status)).toBe(BlkStatus.OK);
  });

  it("answers GET_ID with the serial, NUL-padded to 20 bytes", async () => {
    const { driver, ring, mem } = blk(undefined, { serial: "disk-0042" });
    const r = request(driver, BlkType.GET_ID, 0n, 20);
    mem.write(r.data, new Uint8Array(20).fill(0xee));
    driver.kick(0);
    await until(() => ring.usedIdx() === 1);
    expect(ring.takeUsed()).toEqual([{ id: r.head, len: 21 }]);
    expect(new TextDecoder().decode(mem.view(r.data, 9))).toBe("disk-0042");
    expect([...mem.view(r.data + 9, 11)]).toEqual(new Array(11).fill(0));
  });

  it("in read-only mode offers VIRTIO_BLK_F_RO, fails writes with IOERR and leaves the disk alone, allows flush", async () => {
    const backend = disk(pattern(64 * 512));
    const { driver, ring, mem, transport } = blk(backend, { readonly: true });
    expect(transport.offered & bit(BlkFeature.RO)).toBeTruthy();
    const w = request(driver, BlkType.OUT, 0n, 512, { data: new Uint8Array(512) });
    driver.kick(0);
    await until(() => ring.usedIdx() === 1);
    expect(ring.takeUsed()).toEqual([{ id: w.head, len: 1 }]);
    expect(mem.readU8(w.status)).toBe(BlkStatus.IOERR);
    expect([...backend.bytes.subarray(0, 512)]).toEqual([...pattern(64 * 512).subarray(0, 512)]);
    const f = request(driver, BlkType.FLUSH, 0n, 0);
    driver.kick(0);
    await until(() => ring.usedIdx() === 2);
    expect(mem.readU8(f.status)).toBe(BlkStatus.OK);
  });

  it.each([
    ["past the end of the disk", BlkType.IN, 63n, 1024],
    ["a sector number near 2^64", BlkType.IN, (1n << 64n) - 1n, 512],
    ["a sector number of 2^53", BlkType.IN, 1n << 53n, 512],
    ["a sector number of 2^32 (only the high word set)", BlkType.IN, 1n << 32n, 512],
    ["a sector whose low word alone lies inside the disk", BlkType.OUT, (1n << 32n) + 1n, 512],
    ["a length that is not whole sectors", BlkType.IN, 0n, 100],
    ["a write past the end", BlkType.OUT, 64n, 512],
  ])("completes a request %s with IOERR and touches nothing", async (_n, type, sector, len) => {
    const backend = disk(pattern(64 * 512));
    const { driver, ring, mem } = blk(backend);
    const r = request(driver, type, sector, len, { data: new Uint8Array(len) });
    driver.kick(0);
    await until(() => ring.usedIdx() === 1);
    expect(ring.takeUsed()).toEqual([{ id: r.head, len: 1 }]);
    expect(mem.readU8(r.status)).toBe(BlkStatus.IOERR);
    expect([...backend.bytes]).toEqual([...pattern(64 * 512)]);
  });

  it.each([
    ["WRITE_ZEROES", BlkType.WRITE_ZEROES, 1],
    ["DISCARD", BlkType.DISCARD, 0],
  ])("%s zeroes a sector range; bad ranges get IOERR and bad flags UNSUPP", async (_n, type, flags) => {
    const backend = disk(pattern(64 * 512));
    const { driver, ring, mem, transport } = blk(backend);
    expect(transport.offered & bit(type === BlkType.DISCARD ? BlkFeature.DISCARD : BlkFeature.WRITE_ZEROES)).toBeTruthy();
    const range = (sector: bigint, sectors: number, f: number) => {
      const b = new Uint8Array(16);
      const v = new DataView(b.buffer);
      v.setBigUint64(0, sector, true);
      v.setUint32(8, sectors, true);
      v.setUint32(12, f, true);
      return b;
    };
    const ok = request(driver, type, 0n, 16, { data: range(2n, 3, flags) });
    const past = request(driver, type, 0n, 16, { data: range(62n, 3, flags) });
    const badFlags = request(driver, type, 0n, 16, { data: range(2n, 1, 6) });
    driver.kick(0);
    await until(() => ring.usedIdx() === 3);
    expect([ok, past, badFlags].map((r) => mem.readU8(r.status))).toEqual([BlkStatus.OK, BlkStatus.IOERR, BlkStatus.UNSUPP]);
    expect(backend.bytes.subarray(1024, 2560).every((b) => b === 0)).toBe(true);
    expect([...backend.bytes.subarray(512, 1024)]).toEqual([...pattern(64 * 512).subarray(512, 1024)]);
    expect([...backend.bytes.subarray(2560)]).toEqual([...pattern(64 * 512).subarray(2560)]);
  });

  it("fails reads whose data buffer is device-readable and writes whose data is device-writable", async () => {
    const backend = disk(pattern(64 * 512));
    const { driver, ring, mem } = blk(backend);
    const hdr = (type: number) => {
      const h = driver.alloc.alloc(16);
      mem.writeU32(h, type);
      return h;
    };
    const data = driver.alloc.alloc(512);
    const s1 = driver.alloc.alloc(1);
    const s2 = driver.alloc.alloc(1);
    ring.post([{ addr: hdr(BlkType.IN), len: 16 }, { addr: data, len: 512 }, { addr: s1, len: 1, write: true }]);
    ring.post([{ addr: hdr(BlkType.OUT), len: 16 }, { addr: data, len: 512, write: true }, { addr: s2, len: 1, write: true }]);
    driver.kick(0);
    await until(() => ring.usedIdx() === 2);
    expect(ring.takeUsed().map((u) => u.len)).toEqual([1, 1]);
    expect([mem.readU8(s1), mem.readU8(s2)]).toEqual([BlkStatus.IOERR, BlkStatus.IOERR]);
    expect([...backend.bytes]).toEqual([...pattern(64 * 512)]);
  });

  it("answers unknown request types with UNSUPP", async () => {
    const { driver, ring, mem } = blk();
    const r = request(driver, 0x55, 0n, 0);
    driver.kick(0);
    await until(() => ring.usedIdx() === 1);
    expect(ring.takeUsed()).toEqual([{ id: r.head, len: 1 }]);
    expect(mem.readU8(r.status)).toBe(BlkStatus.UNSUPP);
  });

  it("fails a request whose data buffer is outside guest RAM with IOERR", async () => {
    const { driver, ring, mem } = blk();
    for (const type of [BlkType.OUT, BlkType.IN]) {
      const hdr = driver.alloc.alloc(16);
      const status = driver.alloc.alloc(1);
      driver.mem.writeU32(hdr, type);
      const head = ring.post([
        { addr: hdr, len: 16 },
        { addr: 0x7000_0000, len: 512, write: type === BlkType.IN },
        { addr: status, len: 1, write: true },
      ]);
      driver.kick(0);
      await until(() => ring.usedIdx() === (type === BlkType.OUT ? 1 : 2));
      expect(ring.takeUsed()).toEqual([{ id: head, len: 1 }]);
      expect(mem.readU8(status)).toBe(BlkStatus.IOERR);
    }
  });

  it("returns a chain with no status byte, or a status byte outside RAM, with length 0", async () => {
    const { driver, ring } = blk();
    const hdr = driver.alloc.alloc(16);
    const a = ring.post([{ addr: hdr, len: 16 }]);
    const b = ring.post([{ addr: hdr, len: 16 }, { addr: 0x7000_0000, len: 1, write: true }]);
    driver.kick(0);
    await until(() => ring.usedIdx() === 2);
    expect(ring.takeUsed()).toEqual([
      { id: a, len: 0 },
      { id: b, len: 0 },
    ]);
  });

  it("requests completed together share one MSI-X interrupt", async () => {
    const device = new VirtioBlk(disk(pattern(64 * 512)), { dataplane: plane });
    const t = setupTransport(device, 4 << 20, plane === "worker" ? makeMemfdMemory() : undefined);
    running.push(t.transport);
    t.sink.msixOn = true;
    t.driver.init({ vectors: [2] });
    const ring = t.driver.rings[0]!;
    for (let i = 0; i < 4; i++) request(t.driver, BlkType.IN, BigInt(i), 512);
    t.driver.kick(0);
    await until(() => ring.usedIdx() === 4 && t.sink.sent.length > 0);
    await new Promise((r) => setTimeout(r, 20));
    expect(t.sink.sent).toEqual([2]);
  });

  it("puts the device in DEVICE_NEEDS_RESET for a malformed chain", async () => {
    const { driver, ring } = blk();
    ring.writeDesc(0, 0x10000, 16, 1, 0); // points to itself
    ring.publish(0);
    driver.kick(0);
    await until(() => (driver.status() & Status.DEVICE_NEEDS_RESET) !== 0);
    // The device is reusable after a reset: the driver starts over and reads.
    driver.init();
    driver.rings.splice(0, 1); // the new ring is the one requests go to
    const r = request(driver, BlkType.IN, 1n, 512);
    driver.kick(0);
    await until(() => driver.rings[0]!.usedIdx() === 1);
    expect(driver.mem.readU8(r.status)).toBe(BlkStatus.OK);
  });
});

describe("virtio-blk (main data plane): asynchronous completion", () => {
  it("completes requests in the order their I/O finishes", async () => {
    // The first request's read waits until the test releases it (a timer race loses under load).
    const release: Array<() => void> = [];
    class GatedBackend extends MemoryBlockBackend {
      override async read(buffer: Uint8Array, position: number): Promise<void> {
        if (position === 0) await new Promise<void>((r) => release.push(r));
        return super.read(buffer, position);
      }
    }
    const { driver, ring } = blk(new GatedBackend(pattern(64 * 512)));
    const slow = request(driver, BlkType.IN, 0n, 512);
    const fast = request(driver, BlkType.IN, 1n, 512);
    driver.kick(0);
    expect(ring.usedIdx()).toBe(0); // nothing completes synchronously
    await until(() => ring.usedIdx() === 1);
    expect(ring.takeUsed().map((u) => u.id)).toEqual([fast.head]);
    release.forEach((r) => r());
    await until(() => ring.usedIdx() === 2);
    expect(ring.takeUsed().map((u) => u.id)).toEqual([slow.head]);
  });

  it("drops a completion that arrives after a reset: no used entry, no guest write", async () => {
    const backend = new DelayedBackend(pattern(64 * 512));
    backend.delays = [20];
    const { driver, ring, mem, device } = blk(backend);
    const r = request(driver, BlkType.IN, 0n, 512);
    driver.kick(0);
    driver.w(0x14, 1, 0);
    await until(() => device.pendingRequests === 0);
    expect(ring.usedIdx()).toBe(0);
    expect(mem.readU8(r.status)).toBe(0xff);
    expect(mem.view(r.data, 512).every((b) => b === 0)).toBe(true);
    expect(driver.status()).toBe(0);
  });

});

describe("virtio-blk on a raw image file", () => {
  const inDir = tempDirEach("vmm-blk-");

  it.each(PLANES)("(%s data plane) reads and writes the file, flushes with fdatasync, and never touches the partial tail sector", async (plane) => {
    const path = inDir("disk.img");
    const initial = pattern(8 * 512 + 100, 5);
    await writeFile(path, initial);
    const image = await FileImage.open(path);
    const { driver, ring, mem, device, transport } = blkOn(plane, image);
    expect(device.capacity).toBe(8n);
    const r = request(driver, BlkType.IN, 7n, 512);
    const w = request(driver, BlkType.OUT, 2n, 1024, { data: pattern(1024, 77) });
    const beyond = request(driver, BlkType.OUT, 8n, 512, { data: pattern(512) });
    const f = request(driver, BlkType.FLUSH, 0n, 0);
    driver.kick(0);
    await until(() => ring.usedIdx() === 4);
    expect(mem.readU8(r.status)).toBe(BlkStatus.OK);
    expect(mem.readU8(w.status)).toBe(BlkStatus.OK);
    expect(mem.readU8(beyond.status)).toBe(BlkStatus.IOERR);
    expect(mem.readU8(f.status)).toBe(BlkStatus.OK);
    expect([...mem.view(r.data, 512)]).toEqual([...initial.subarray(7 * 512, 8 * 512)]);
    const after = await readFile(path);
    expect(after.length).toBe(initial.length);
    expect([...after.subarray(1024, 2048)]).toEqual([...pattern(1024, 77)]);
    expect([...after.subarray(8 * 512)]).toEqual([...initial.subarray(8 * 512)]);
    if (plane === "worker") expect(transport.dataPlane(0)!.stats.completed).toBe(4);
    transport.shutdown();
    await device.close();
  });

  it("opens read-only images without write access and reports a missing file clearly", async () => {
    const path = inDir("ro.img");
    await writeFile(path, new Uint8Array(1024));
    const image = await FileImage.open(path, { readonly: true });
    expect(image.readonly).toBe(true);
    await expect(image.write(new Uint8Array(512), 0)).rejects.toThrow(/read-only/);
    await image.close();
    await expect(FileImage.open(inDir("missing.img"))).rejects.toThrow(/disk image .*missing.img: cannot open for writing \(ENOENT\)/);
  });
});
