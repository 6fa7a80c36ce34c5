import { closeSync, ftruncateSync } from "node:fs";
import { EventFd, mapFd, memfdCreate } from "@vmm/host-io";
import { afterEach, describe, expect, it } from "vitest";
import type { RawClient } from "./support/client.js";
import { hostIo } from "./support/gate.js";
import { type RunningServer, startServer } from "./support/server-process.js";
import { Bytes, CMD, dmaMapRequest, dmaUnmapRequest, EEXIST, EINVAL, ENOENT, ERROR, le, le64, message, REPLY, regionReadRequest, regionWriteRequest } from "./support/wire.js";

let server: RunningServer | undefined;
afterEach(() => server?.stop());

const IOVA = 0x100000;
const RAM = 0x10000;

/** Where each device's engine lives. */
const ENGINE = {
  rtl8168: { bar: 2, base: 0x800, id: 1 },
  nvme: { bar: 0, base: 0x1000, id: 2 },
  "subpage-rom": { bar: 0, base: 0x40, id: 3 },
  "intx-only": { bar: 0, base: 0x0, id: 4 },
} as const;
type Device = keyof typeof ENGINE;

const REG = { MAGIC: 0x00, ID: 0x04, SRC_LO: 0x08, SRC_HI: 0x0c, DST_LO: 0x10, DST_HI: 0x14, LEN: 0x18, OP: 0x1c, PATTERN: 0x20, VECTOR: 0x24, DOORBELL: 0x28, STATUS: 0x2c, COUNT: 0x30, IRQS: 0x34, SCRATCH: 0x38 };

class Engine {
  constructor(
    readonly client: RawClient,
    readonly device: Device,
  ) {}
  get(reg: number): number {
    return this.client.read32(ENGINE[this.device].bar, ENGINE[this.device].base + reg);
  }
  set(reg: number, value: number): void {
    this.client.write32(ENGINE[this.device].bar, ENGINE[this.device].base + reg, value);
  }
  program(src: number, dst: number, len: number, op = 0, pattern = 0): void {
    this.set(REG.SRC_LO, src);
    this.set(REG.SRC_HI, 0);
    this.set(REG.DST_LO, dst);
    this.set(REG.DST_HI, 0);
    this.set(REG.LEN, len);
    this.set(REG.OP, op);
    this.set(REG.PATTERN, pattern);
  }
}

/** Guest RAM as a memfd the test maps and hands to the server with DMA_MAP. */
function guestRam(size = RAM): { fd: number; bytes: Uint8Array } {
  const fd = memfdCreate("test-guest-ram");
  ftruncateSync(fd, size);
  return { fd, bytes: mapFd(fd, 0, size, { writable: true }) };
}

async function connected(device: Device, extra: string[] = [], json?: string): Promise<{ client: RawClient; engine: Engine }> {
  server = await startServer(device, extra);
  const client = server.connect();
  client.negotiate(json);
  return { client, engine: new Engine(client, device) };
}

describe.skipIf(!hostIo.ok)("test engine", () => {
  it.each(Object.keys(ENGINE) as Device[])("%s: MAGIC, ID, SCRATCH and STATUS at the stated offset", async (device) => {
    const { client, engine } = await connected(device);
    expect(engine.get(REG.MAGIC)).toBe(0x45545556);
    expect(engine.get(REG.ID)).toBe(ENGINE[device].id);
    engine.set(REG.SCRATCH, 0xcafe1234);
    expect(engine.get(REG.SCRATCH)).toBe(0xcafe1234);
    engine.set(REG.MAGIC, 0);
    expect(engine.get(REG.MAGIC)).toBe(0x45545556);
    expect([engine.get(REG.STATUS), engine.get(REG.COUNT), engine.get(REG.IRQS)]).toEqual([0, 0, 0]);
    client.close();
  });

  it("copies, inverts and adds through the mapped fd, and counts completions", async () => {
    const { client, engine } = await connected("rtl8168");
    const ram = guestRam();
    client.ok(CMD.DMA_MAP, dmaMapRequest(IOVA, RAM), [ram.fd]);
    for (let i = 0; i < 300; i++) ram.bytes[0x100 + i] = (i * 13) & 0xff;

    engine.program(IOVA + 0x100, IOVA + 0x8000, 300, 1);
    engine.set(REG.DOORBELL, 3);
    expect(engine.get(REG.STATUS)).toBe(1);
    for (let i = 0; i < 300; i++) expect(ram.bytes[0x8000 + i]).toBe(((i * 13) & 0xff) ^ 0xff);
    expect(ram.bytes[0x8000 + 300]).toBe(0);

    engine.set(REG.STATUS, 1);
    engine.program(IOVA + 0x100, IOVA + 0x9001, 300, 2, 0x1f5);
    engine.set(REG.DOORBELL, 3);
    for (let i = 0; i < 300; i++) expect(ram.bytes[0x9001 + i]).toBe(((i * 13) + 0xf5) & 0xff);

    engine.program(IOVA + 0x9001, IOVA + RAM - 300, 300, 0);
    engine.set(REG.DOORBELL, 3);
    expect(ram.bytes.subarray(RAM - 300)).toEqual(ram.bytes.subarray(0x9001, 0x9001 + 300));
    expect([engine.get(REG.STATUS), engine.get(REG.COUNT), engine.get(REG.IRQS)]).toEqual([1, 3, 0]);
    closeSync(ram.fd);
    client.close();
  });

  it("sets ERROR and writes nothing for a bad LEN or OP, memory outside the windows, or a read-only destination", async () => {
    const { client, engine } = await connected("nvme");
    const ram = guestRam();
    client.ok(CMD.DMA_MAP, dmaMapRequest(IOVA, RAM), [ram.fd]);
    const ro = guestRam(0x1000);
    client.ok(CMD.DMA_MAP, dmaMapRequest(0x400000, 0x1000, 1), [ro.fd]);
    ram.bytes.fill(0xaa, 0, 0x100);
    const cases: [number, number, number, number][] = [
      [IOVA, IOVA + 0x1000, 0, 0],
      [IOVA, IOVA + 0x1000, 0x100001, 0],
      [IOVA, IOVA + 0x1000, 16, 3],
      [IOVA, IOVA + RAM - 8, 16, 0], // runs past the window
      [IOVA - 0x1000, IOVA + 0x1000, 16, 0],
      [IOVA, 0x400000, 16, 0],
    ];
    for (const [src, dst, len, op] of cases) {
      engine.set(REG.STATUS, 7);
      engine.program(src, dst, len, op);
      engine.set(REG.DOORBELL, 3);
      expect(engine.get(REG.STATUS)).toBe(2);
    }
    expect(ram.bytes.subarray(0x1000, 0x1100).every((b) => b === 0)).toBe(true);
    expect(ram.bytes.subarray(RAM - 8).every((b) => b === 0)).toBe(true);
    expect(engine.get(REG.COUNT)).toBe(0);
    // A read-only window is a fine source.
    ro.bytes[5] = 0x42;
    engine.set(REG.STATUS, 7);
    engine.program(0x400000, IOVA + 0x2000, 8, 0);
    engine.set(REG.DOORBELL, 3);
    expect([engine.get(REG.STATUS), ram.bytes[0x2005]]).toEqual([1, 0x42]);
    client.close();
    [ram.fd, ro.fd].forEach((fd) => closeSync(fd));
  });

  it("a transfer may run across two adjacent windows", async () => {
    const { client, engine } = await connected("intx-only");
    const a = guestRam(0x1000);
    const b = guestRam(0x1000);
    client.ok(CMD.DMA_MAP, dmaMapRequest(IOVA, 0x1000), [a.fd]);
    client.ok(CMD.DMA_MAP, dmaMapRequest(IOVA + 0x1000, 0x1000), [b.fd]);
    a.bytes.fill(1, 0xff0);
    b.bytes.fill(2, 0, 0x10);
    engine.program(IOVA + 0xff0, IOVA + 0x800, 0x20, 0);
    engine.set(REG.DOORBELL, 3);
    expect(engine.get(REG.STATUS)).toBe(1);
    expect([...a.bytes.subarray(0x800, 0x820)]).toEqual([...new Array(16).fill(1), ...new Array(16).fill(2)]);
    client.close();
    [a.fd, b.fd].forEach((fd) => closeSync(fd));
  });
});

describe.skipIf(!hostIo.ok)("DMA_MAP / DMA_UNMAP", () => {
  it("validates windows: alignment, overlaps (EEXIST), flags, fds; unmap needs an exact match and echoes the request", async () => {
    const { client, engine } = await connected("intx-only");
    const ram = guestRam();
    const small = guestRam(0x1000);
    const notAFile = new EventFd();
    expect(client.errno(CMD.DMA_MAP, dmaMapRequest(IOVA + 0x10, 0x1000))).toBe(EINVAL);
    expect(client.errno(CMD.DMA_MAP, dmaMapRequest(IOVA, 0x1001))).toBe(EINVAL);
    expect(client.errno(CMD.DMA_MAP, dmaMapRequest(IOVA, 0))).toBe(EINVAL);
    expect(client.errno(CMD.DMA_MAP, dmaMapRequest(0xfffffffffffff000n, 0x2000))).toBe(EINVAL);
    expect(client.errno(CMD.DMA_MAP, dmaMapRequest(IOVA, 0x1000, 4))).toBe(EINVAL);
    expect(client.errno(CMD.DMA_MAP, dmaMapRequest(IOVA, 0x1000).subarray(0, 24))).toBe(EINVAL);
    expect(client.errno(CMD.DMA_MAP, dmaMapRequest(IOVA, 0x2000), [small.fd])).toBe(EINVAL); // file too small
    expect(client.errno(CMD.DMA_MAP, dmaMapRequest(IOVA, 0x1000, 3, 0x10), [ram.fd])).toBe(EINVAL); // offset not a page
    expect(client.errno(CMD.DMA_MAP, dmaMapRequest(IOVA, 0x1000), [notAFile.fd])).toBe(EINVAL);
    expect(client.errno(CMD.DMA_MAP, dmaMapRequest(IOVA, 0x1000), [ram.fd, small.fd])).toBe(EINVAL);

    client.ok(CMD.DMA_MAP, dmaMapRequest(IOVA, RAM), [ram.fd]);
    expect(client.errno(CMD.DMA_MAP, dmaMapRequest(IOVA + RAM - 0x1000, 0x2000))).toBe(EEXIST);
    expect(client.errno(CMD.DMA_MAP, dmaMapRequest(IOVA - 0x1000, 0x2000))).toBe(EEXIST);
    client.ok(CMD.DMA_MAP, dmaMapRequest(IOVA + RAM, 0x1000, 3, 0x1000), [ram.fd]); // same file, another page of it

    expect(client.errno(CMD.DMA_UNMAP, dmaUnmapRequest(IOVA, 0x1000))).toBe(ENOENT);
    expect(client.errno(CMD.DMA_UNMAP, dmaUnmapRequest(IOVA, RAM, 1))).not.toBe(0);
    const request = dmaUnmapRequest(IOVA, RAM);
    expect([...client.ok(CMD.DMA_UNMAP, request).payload]).toEqual([...request]);
    // The window is gone: DMA into it fails.
    engine.program(IOVA + RAM, IOVA, 4);
    engine.set(REG.DOORBELL, 3);
    expect(engine.get(REG.STATUS)).toBe(2);
    // ALL drops every window.
    client.ok(CMD.DMA_UNMAP, dmaUnmapRequest(0, 0, 2));
    expect(client.errno(CMD.DMA_UNMAP, dmaUnmapRequest(IOVA + RAM, 0x1000))).toBe(ENOENT);
    notAFile.close();
    [ram.fd, small.fd].forEach((fd) => closeSync(fd));
    client.close();
  });
});

/** Answers the server's DMA requests from `memory` (IOVA-based) until the reply with `id` arrives. */
function serveDma(client: RawClient, memory: Uint8Array, base: number, untilId: number, log: string[], refuse = false) {
  for (;;) {
    const m = client.receive();
    if ((m.flags & 0xf) === REPLY) {
      expect(m.id).toBe(untilId);
      return m;
    }
    expect(m.flags).toBe(0);
    const address = Number(le64(m.payload, 0));
    const count = Number(le64(m.payload, 8));
    log.push(`${m.command === CMD.DMA_READ ? "read" : "write"} ${(address - base).toString(16)}+${count}`);
    if (refuse) {
      client.send(message(m.id, m.command, new Uint8Array(0), REPLY | ERROR));
      continue;
    }
    if (m.command === CMD.DMA_READ) {
      expect(m.payload.length).toBe(16);
      client.send(message(m.id, CMD.DMA_READ, new Bytes().u64(address).u64(count).raw(memory.subarray(address - base, address - base + count)).done(), REPLY));
    } else {
      expect(m.command).toBe(CMD.DMA_WRITE);
      expect(m.payload.length).toBe(16 + count);
      memory.set(m.payload.subarray(16), address - base);
      client.send(message(m.id, CMD.DMA_WRITE, new Bytes().u64(address).u32(count).done(), REPLY));
    }
  }
}

function ringDoorbell(engine: Engine, id: number, value = 3): void {
  const at = ENGINE[engine.device].base + REG.DOORBELL;
  engine.client.send(message(id, CMD.REGION_WRITE, regionWriteRequest(ENGINE[engine.device].bar, at, new Bytes().u32(value).done())));
}

describe.skipIf(!hostIo.ok)("DMA by messages", () => {
  it("--dma messages: the server reads with DMA_READ and writes with DMA_WRITE before it answers the doorbell", async () => {
    const { client, engine } = await connected("rtl8168", ["--dma", "messages"]);
    const ram = guestRam();
    client.ok(CMD.DMA_MAP, dmaMapRequest(IOVA, RAM), [ram.fd]); // an fd, unused in this mode
    const memory = new Uint8Array(RAM);
    for (let i = 0; i < 64; i++) memory[i] = i;
    engine.program(IOVA, IOVA + 0x1000, 64, 1);
    ringDoorbell(engine, 500);
    const log: string[] = [];
    const reply = serveDma(client, memory, IOVA, 500, log);
    expect(reply.flags).toBe(REPLY);
    expect(log).toEqual(["read 0+64", "write 1000+64"]);
    for (let i = 0; i < 64; i++) expect(memory[0x1000 + i]).toBe(i ^ 0xff);
    expect(ram.bytes[0x1000]).toBe(0); // the mapping was not used
    expect(engine.get(REG.STATUS)).toBe(1);
    closeSync(ram.fd);
    client.close();
  });

  it("uses messages for a window mapped without an fd, cut to the client's max_data_xfer_size", async () => {
    const { client, engine } = await connected("nvme", [], '{"capabilities":{"max_data_xfer_size":4096}}');
    client.ok(CMD.DMA_MAP, dmaMapRequest(IOVA, RAM));
    const memory = new Uint8Array(RAM);
    memory.fill(7, 0, 10000);
    engine.program(IOVA, IOVA + 0x8000, 10000, 2, 1);
    ringDoorbell(engine, 600);
    const log: string[] = [];
    serveDma(client, memory, IOVA, 600, log);
    expect(log).toEqual(["read 0+4096", "read 1000+4096", "read 2000+1808", "write 8000+4096", "write 9000+4096", "write a000+1808"]);
    expect(memory.subarray(0x8000, 0x8000 + 10000).every((b) => b === 8)).toBe(true);
    expect(engine.get(REG.STATUS)).toBe(1);
    client.close();
  });

  it("serves the client's own requests while it waits for a DMA reply", async () => {
    const { client, engine } = await connected("intx-only");
    client.ok(CMD.DMA_MAP, dmaMapRequest(IOVA, RAM));
    engine.set(REG.SCRATCH, 0x600d);
    engine.program(IOVA, IOVA + 0x100, 4, 0);
    ringDoorbell(engine, 700);
    const dmaRead = client.receive();
    expect(dmaRead.command).toBe(CMD.DMA_READ);
    // Before answering, the client asks something itself: the server answers it at once.
    client.send(message(701, CMD.REGION_READ, regionReadRequest(0, REG.SCRATCH, 4)));
    const scratch = client.receive();
    expect([scratch.id, le(scratch.payload, 16, 4)]).toEqual([701, 0x600d]);
    client.send(message(dmaRead.id, CMD.DMA_READ, new Bytes().u64(IOVA).u64(4).u32(0x04030201).done(), REPLY));
    const memory = new Uint8Array(RAM);
    const log: string[] = [];
    serveDma(client, memory, IOVA, 700, log);
    expect(log).toEqual(["write 100+4"]);
    expect([...memory.subarray(0x100, 0x104)]).toEqual([1, 2, 3, 4]);
    client.close();
  });

  it("nests the client's doorbells while it waits, up to 8 deep; deeper ones get EBUSY", async () => {
    const { client, engine } = await connected("intx-only");
    client.ok(CMD.DMA_MAP, dmaMapRequest(IOVA, RAM));
    engine.program(IOVA, IOVA + 0x100, 4, 0);
    const pending: { id: number; command: number; address: number; count: number }[] = [];
    for (let id = 900; id < 909; id++) {
      ringDoorbell(engine, id);
      const m = client.receive();
      expect(m.command).toBe(CMD.DMA_READ);
      pending.push({ id: m.id, command: m.command, address: Number(le64(m.payload, 0)), count: Number(le64(m.payload, 8)) });
    }
    ringDoorbell(engine, 909);
    expect(client.receive()).toMatchObject({ id: 909, flags: REPLY | ERROR, error: 16 });
    // Answer every request as it comes (outer ones first): each doorbell completes once its own reply arrived.
    for (const p of pending) client.send(message(p.id, CMD.DMA_READ, new Bytes().u64(p.address).u64(p.count).u32(0x01020304).done(), REPLY));
    const done: number[] = [];
    while (done.length < 9) {
      const m = client.receive();
      if ((m.flags & 0xf) === REPLY) {
        expect(m.flags).toBe(REPLY);
        done.push(m.id);
        continue;
      }
      expect(m.command).toBe(CMD.DMA_WRITE);
      client.send(message(m.id, CMD.DMA_WRITE, new Bytes().u64(le64(m.payload, 0)).u32(Number(le64(m.payload, 8))).done(), REPLY));
    }
    expect(done).toEqual([908, 907, 906, 905, 904, 903, 902, 901, 900]);
    expect(engine.get(REG.COUNT)).toBe(9);
    client.close();
  });

  it("exits 0 when the client disconnects while the server waits for a DMA reply", async () => {
    const { client, engine } = await connected("intx-only", ["--dma", "messages"]);
    client.ok(CMD.DMA_MAP, dmaMapRequest(IOVA, RAM));
    engine.program(IOVA, IOVA + 0x100, 4, 0);
    ringDoorbell(engine, 950);
    expect(client.receive().command).toBe(CMD.DMA_READ);
    client.close();
    expect(await server!.exited).toBe(0);
  });

  it("sets ERROR and writes nothing when the client refuses a DMA_READ", async () => {
    const { client, engine } = await connected("subpage-rom");
    client.ok(CMD.DMA_MAP, dmaMapRequest(IOVA, RAM));
    engine.program(IOVA, IOVA + 0x100, 4, 0);
    ringDoorbell(engine, 800);
    const log: string[] = [];
    serveDma(client, new Uint8Array(RAM), IOVA, 800, log, true);
    expect(log).toEqual(["read 0+4"]);
    expect(engine.get(REG.STATUS)).toBe(2);
    client.close();
  });
});
