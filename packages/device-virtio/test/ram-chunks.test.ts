// Guest buffers that cross the boundary between two adjacent host RAM chunks (a guest with more than 8 GiB of
// RAM sees one at 8 GiB, 12 GiB, ...): the devices must serve them as if RAM were one piece, as hardware does.
import { readFile, writeFile } from "node:fs/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileImage } from "../src/backends/file-image.js";
import { BlkStatus, BlkType, VirtioBlk } from "../src/devices/blk.js";
import { VirtioRng } from "../src/devices/rng.js";
import type { VirtioDevice } from "../src/device.js";
import { makeChunkedMemory, RAM_BASE } from "./driver.js";
import { setupTransport, until } from "./harness.js";
import { tempDirEach } from "./temp-dir.js";

const CHUNK = 2 << 20;
/** Where the first chunk ends and the second begins, and where the second ends and the third begins. */
const BOUNDARY = RAM_BASE + CHUNK;
const BOUNDARY2 = RAM_BASE + 2 * CHUNK;
const pattern = (n: number, seed = 1) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);

function chunked(device: VirtioDevice) {
  const { memory, chunks } = makeChunkedMemory(3 * CHUNK, CHUNK);
  const t = setupTransport(device, 3 * CHUNK, memory);
  expect(t.driver.init()).toBe(true);
  return { ...t, chunks, ring: t.driver.rings[0]! };
}

describe("guest buffers across adjacent RAM chunks", () => {
  const inDir = tempDirEach("virtio-chunks-");

  it("virtio-blk writes a data buffer that crosses a chunk boundary to the image and reads it back across one", async () => {
    const path = inDir("disk.img");
    const initial = pattern(256 * 512, 5);
    await writeFile(path, initial);
    const device = new VirtioBlk(await FileImage.open(path));
    const { driver, ring, mem, chunks } = chunked(device);

    // A 64 KiB write (size_max) whose buffer starts 1000 bytes before the boundary: a sector splits across it.
    const payload = pattern(64 * 1024, 77);
    const hdr = driver.alloc.alloc(16);
    mem.writeU32(hdr, BlkType.OUT);
    mem.writeU64(hdr + 8, 4n);
    const out = BOUNDARY - 1000;
    mem.write(out, payload);
    const status = driver.alloc.alloc(1);
    mem.writeU8(status, 0xff);
    const w = ring.post([{ addr: hdr, len: 16 }, { addr: out, len: payload.length }, { addr: status, len: 1, write: true }]);
    driver.kick(0);
    await until(() => ring.usedIdx() === 1);
    expect(ring.takeUsed()).toEqual([{ id: w, len: 1 }]);
    expect(mem.readU8(status)).toBe(BlkStatus.OK);
    const image = await readFile(path);
    expect(Buffer.compare(image.subarray(4 * 512, 4 * 512 + payload.length), Buffer.from(payload))).toBe(0);
    expect(Buffer.compare(image.subarray(0, 4 * 512), Buffer.from(initial.subarray(0, 4 * 512)))).toBe(0);
    expect(Buffer.compare(image.subarray(4 * 512 + payload.length), Buffer.from(initial.subarray(4 * 512 + payload.length)))).toBe(0);

    // Read it back into a buffer that crosses the boundary at another offset, with a header across the next one.
    const rhdr = BOUNDARY2 - 8;
    const into = BOUNDARY - 3 * 512 - 7;
    mem.write(into - 0x1000, new Uint8Array(payload.length + 0x2000));
    mem.writeU32(rhdr, BlkType.IN);
    mem.writeU32(rhdr + 4, 0);
    mem.writeU64(rhdr + 8, 4n);
    const rstatus = driver.alloc.alloc(1);
    mem.writeU8(rstatus, 0xff);
    const r = ring.post([{ addr: rhdr, len: 16 }, { addr: into, len: payload.length, write: true }, { addr: rstatus, len: 1, write: true }]);
    driver.kick(0);
    await until(() => ring.usedIdx() === 2);
    expect(ring.takeUsed()).toEqual([{ id: r, len: payload.length + 1 }]);
    expect(mem.readU8(rstatus)).toBe(BlkStatus.OK);
    const back = new Uint8Array(payload.length);
    mem.read(into, back);
    expect(Buffer.compare(Buffer.from(back), Buffer.from(payload))).toBe(0);
    expect(chunks[1]![payload.length - 3 * 512 - 7 - 1]).toBe(payload[payload.length - 1]);
    await device.close();
  });

  it("virtio-rng fills a buffer that crosses a chunk boundary on both sides", async () => {
    const { driver, ring, chunks } = chunked(new VirtioRng());
    const b = ring.post([{ addr: BOUNDARY - 256, len: 512, write: true }]);
    driver.kick(0);
    await until(() => ring.usedIdx() === 1);
    expect(ring.takeUsed()).toEqual([{ id: b, len: 512 }]);
    expect(chunks[0]!.subarray(CHUNK - 256).some((x) => x !== 0)).toBe(true);
    expect(chunks[1]!.subarray(0, 256).some((x) => x !== 0)).toBe(true);
  });
});
