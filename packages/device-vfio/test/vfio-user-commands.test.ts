// Each command the client sends, byte for byte against the spec's tables, and what it makes of the replies: a
// scripted server (test/support/scripted-peer.mjs) with small limits (2 fds, 8 data bytes a message) so that
// splitting shows.
import { closeSync, ftruncateSync, readSync } from "node:fs";
import { EventFd, mapFd, memfdCreate } from "@vmm/host-io";
import { afterEach, describe, expect, it } from "vitest";
import type { VfioDmaRegion } from "../src/backend/backend.js";
import { VfioUserCommandError } from "../src/vfio-user/errors.js";
import { openSession } from "./support/handshake.js";
import { bytes, Cmd, COMMAND, errorReply, message, reply, u32, u64 } from "./support/wire.js";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

/** What the client sends as message `id`: a command with `payload`. */
const command = (id: number, cmd: number, ...payload: (readonly number[] | Uint8Array)[]) => message(id, cmd, COMMAND, bytes(...payload));

describe("vfio-user DEVICE_GET_INFO and DEVICE_GET_IRQ_INFO", () => {
  it("asks with argsz 16 and the other fields zero, and decodes the reply", async () => {
    const { client, messages } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DEVICE_GET_INFO, bytes(u32(16), u32(3), u32(9), u32(5))) },
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DEVICE_GET_IRQ_INFO, bytes(u32(16), u32(0b1001), u32(2), u32(8))) },
    ]);
    expect(client.deviceInfo()).toEqual({ flags: 3, numRegions: 9, numIrqs: 5 });
    expect(client.irqInfo(2)).toEqual({ index: 2, flags: 0b1001, count: 8 });
    client.close();
    const sent = await messages();
    expect(sent[0]!.bytes).toEqual(command(1, Cmd.DEVICE_GET_INFO, u32(16), u32(0), u32(0), u32(0)));
    expect(sent[1]!.bytes).toEqual(command(2, Cmd.DEVICE_GET_IRQ_INFO, u32(16), u32(0), u32(2), u32(0)));
  });
});

describe("vfio-user DEVICE_GET_REGION_INFO", () => {
  // BAR4 of 16 KiB at offset 0x10000 of the server's fd, mappable except its first page (sparse areas
  // [0x1000, +0x1000) and [0x3000, +0x1000)), and a region type capability.
  const sparseRegion = bytes(
    u32(96), u32(0xf), u32(4), u32(32), u64(0x4000), u64(0x10000),
    [1, 0, 1, 0], u32(80), u32(2), u32(0), u64(0x1000), u64(0x1000), u64(0x3000), u64(0x1000),
    [2, 0, 1, 0], u32(0), u32(0x8000_8086), u32(1),
  );
  const regionContent = bytes([0xde, 0xad, 0xbe, 0xef]);

  it("asks for region `index` with room for capabilities and decodes a plain region", async () => {
    const { client, messages } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DEVICE_GET_REGION_INFO, bytes(u32(32), u32(3), u32(0), u32(0), u64(0x100), u64(0))) },
    ]);
    expect(client.regionInfo(0)).toEqual({ index: 0, flags: 3, size: 0x100 });
    // Cached: region info does not change, and each reply's fd would otherwise pile up.
    expect(client.regionInfo(0)).toEqual({ index: 0, flags: 3, size: 0x100 });
    client.close();
    const sent = await messages();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.bytes).toEqual(command(1, Cmd.DEVICE_GET_REGION_INFO, u32(256), u32(0), u32(0), u32(0), u64(0), u64(0)));
  });

  it("returns the fd that came with a mappable region, its sparse areas and its type", async () => {
    const { client } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DEVICE_GET_REGION_INFO, sparseRegion), fds: [{ memfd: regionContent }] },
    ]);
    const info = client.regionInfo(4);
    expect(info).toEqual({
      index: 4,
      flags: 0xf,
      size: 0x4000,
      type: { type: 0x8000_8086, subtype: 1 },
      mmap: { fd: expect.any(Number), offset: 0x10000, areas: [{ offset: 0x1000, size: 0x1000 }, { offset: 0x3000, size: 0x1000 }] },
    });
    const seen = new Uint8Array(4);
    readSync(info.mmap!.fd, seen, 0, 4, 0);
    expect(seen).toEqual(regionContent);
    client.close();
    // close() gives the fd back.
    expect(() => readSync(info.mmap!.fd, seen, 0, 4, 0)).toThrow(/EBADF/);
  });

  it("maps a region without a sparse capability whole", async () => {
    const { client } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DEVICE_GET_REGION_INFO, bytes(u32(32), u32(7), u32(3), u32(0), u64(0x100000), u64(0x2000))), fds: [{ memfd: regionContent }] },
    ]);
    expect(client.regionInfo(3).mmap).toEqual({ fd: expect.any(Number), offset: 0x2000, areas: [{ offset: 0, size: 0x100000 }] });
    client.close();
  });

  it("asks again with the server's argsz when the capabilities did not fit in 256 bytes, closing the first reply's fd", async () => {
    const areaBytes = Array.from({ length: 20 }, (_, i) => [...u64(i * 0x1000), ...u64(0x800)]).flat();
    const big = bytes(u32(32 + 16 + 20 * 16), u32(0xf), u32(2), u32(32), u64(0x20000), u64(0), [1, 0, 1, 0], u32(0), u32(20), u32(0), areaBytes);
    const { client, messages, peer } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DEVICE_GET_REGION_INFO, big.subarray(0, 256)), fds: [{ probe: "first" }] },
      { op: "recv" },
      { op: "probe", probe: "first" },
      { op: "reply", bytes: reply(Cmd.DEVICE_GET_REGION_INFO, big), fds: [{ memfd: regionContent }] },
    ]);
    const areas = client.regionInfo(2).mmap?.areas;
    expect(areas).toHaveLength(20);
    expect(areas![19]).toEqual({ offset: 19 * 0x1000, size: 0x800 });
    client.close();
    const sent = await messages();
    expect(sent[0]!.bytes).toEqual(command(1, Cmd.DEVICE_GET_REGION_INFO, u32(256), u32(0), u32(2), u32(0), u64(0), u64(0)));
    expect(sent[1]!.bytes).toEqual(command(2, Cmd.DEVICE_GET_REGION_INFO, u32(368), u32(0), u32(2), u32(0), u64(0), u64(0)));
    expect(await peer.probes()).toEqual({ first: true });
  });
});

describe("vfio-user DEVICE_SET_IRQS", () => {
  const eventFds = () => {
    const fds = Array.from({ length: 6 }, () => new EventFd());
    cleanups.push(() => fds.forEach((fd) => fd.close()));
    return fds;
  };

  it("sends eventfds with SCM_RIGHTS, at most max_msg_fds a message, and unassigns -1 runs without fds", async () => {
    const fds = eventFds();
    const setReply = reply(Cmd.DEVICE_SET_IRQS);
    const { client, messages } = await openSession([
      ...[1, 2, 3, 4].flatMap(() => [{ op: "recv" as const }, { op: "reply" as const, bytes: setReply }]),
      // The fds the peer got, in order: signal the first and the last.
      { op: "signal", fd: 0 },
      { op: "signal", fd: 3 },
    ]);
    client.setIrqs({ action: "trigger", index: 2, start: 0, fds: [fds[0]!.fd, fds[1]!.fd, fds[2]!.fd, -1, -1, fds[5]!.fd] });
    client.close();
    const sent = await messages();
    const trigger = 4 | 32; // DATA_EVENTFD | ACTION_TRIGGER
    expect(sent.map((m) => m.fdCount)).toEqual([2, 1, 0, 1]);
    expect(sent[0]!.bytes).toEqual(command(1, Cmd.DEVICE_SET_IRQS, u32(20), u32(trigger), u32(2), u32(0), u32(2)));
    expect(sent[1]!.bytes).toEqual(command(2, Cmd.DEVICE_SET_IRQS, u32(20), u32(trigger), u32(2), u32(2), u32(1)));
    expect(sent[2]!.bytes).toEqual(command(3, Cmd.DEVICE_SET_IRQS, u32(20), u32(trigger), u32(2), u32(3), u32(2)));
    expect(sent[3]!.bytes).toEqual(command(4, Cmd.DEVICE_SET_IRQS, u32(20), u32(trigger), u32(2), u32(5), u32(1)));
    expect(fds.map((fd) => fd.read())).toEqual([1n, null, null, null, null, 1n]);
  });

  it("disables an index, masks and unmasks, and passes an unmask eventfd", async () => {
    const fds = eventFds();
    const setReply = reply(Cmd.DEVICE_SET_IRQS);
    const { client, messages } = await openSession([1, 2, 3, 4, 5].flatMap(() => [{ op: "recv" as const }, { op: "reply" as const, bytes: setReply }]));
    client.setIrqs({ action: "trigger-disable", index: 1 });
    client.setIrqs({ action: "trigger", index: 2, start: 0, fds: [] });
    client.setIrqs({ action: "mask", index: 0, start: 0, count: 1 });
    client.setIrqs({ action: "unmask", index: 0, start: 0, count: 1 });
    client.setIrqs({ action: "unmask-fd", index: 0, fd: fds[0]!.fd });
    client.close();
    const sent = await messages();
    expect(sent.map((m) => m.bytes)).toEqual([
      command(1, Cmd.DEVICE_SET_IRQS, u32(20), u32(1 | 32), u32(1), u32(0), u32(0)),
      command(2, Cmd.DEVICE_SET_IRQS, u32(20), u32(1 | 32), u32(2), u32(0), u32(0)),
      command(3, Cmd.DEVICE_SET_IRQS, u32(20), u32(1 | 8), u32(0), u32(0), u32(1)),
      command(4, Cmd.DEVICE_SET_IRQS, u32(20), u32(1 | 16), u32(0), u32(0), u32(1)),
      command(5, Cmd.DEVICE_SET_IRQS, u32(20), u32(4 | 16), u32(0), u32(0), u32(1)),
    ]);
    expect(sent.map((m) => m.fdCount)).toEqual([0, 0, 0, 0, 1]);
  });

  it("refuses eventfds when the server takes no fds", async () => {
    const fds = eventFds();
    const { client, peer } = await openSession([], { max_msg_fds: 0 });
    expect(() => client.setIrqs({ action: "trigger", index: 2, start: 0, fds: [fds[0]!.fd] })).toThrow(/max_msg_fds 0/);
    client.close();
    await peer.done;
  });
});

describe("vfio-user REGION_READ and REGION_WRITE", () => {
  it("splits a read into max_data_xfer_size pieces and reassembles the data", async () => {
    const data = Uint8Array.from({ length: 20 }, (_, i) => 0xa0 + i);
    const { client, messages } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.REGION_READ, bytes(u64(0x10), u32(2), u32(8), data.subarray(0, 8))) },
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.REGION_READ, bytes(u64(0x18), u32(2), u32(8), data.subarray(8, 16))) },
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.REGION_READ, bytes(u64(0x20), u32(2), u32(4), data.subarray(16))) },
    ]);
    expect(client.read(2, 0x10, 20)).toEqual(data);
    expect(client.read(2, 0x10, 0)).toEqual(new Uint8Array(0));
    client.close();
    expect((await messages()).map((m) => m.bytes)).toEqual([
      command(1, Cmd.REGION_READ, u64(0x10), u32(2), u32(8)),
      command(2, Cmd.REGION_READ, u64(0x18), u32(2), u32(8)),
      command(3, Cmd.REGION_READ, u64(0x20), u32(2), u32(4)),
    ]);
  });

  it("splits a write the same way", async () => {
    const data = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
    const { client, messages } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.REGION_WRITE, bytes(u64(0x40), u32(7), u32(8))) },
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.REGION_WRITE, bytes(u64(0x48), u32(7), u32(4))) },
    ]);
    client.write(7, 0x40, data);
    client.close();
    expect((await messages()).map((m) => m.bytes)).toEqual([
      command(1, Cmd.REGION_WRITE, u64(0x40), u32(7), u32(8), data.subarray(0, 8)),
      command(2, Cmd.REGION_WRITE, u64(0x48), u32(7), u32(4), data.subarray(8)),
    ]);
  });

  it("turns an error reply into an error naming the command and errno, and goes on", async () => {
    const { client } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: errorReply(Cmd.REGION_READ, 22) },
      { op: "recv" },
      { op: "reply", bytes: errorReply(Cmd.REGION_WRITE, 0) },
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.REGION_READ, bytes(u64(0), u32(0), u32(1), [0x5a])) },
    ]);
    let error: unknown;
    try {
      client.read(0, 0, 4);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(VfioUserCommandError);
    expect(error).toMatchObject({ command: "VFIO_USER_REGION_READ", errno: "EINVAL", errnoNumber: 22 });
    expect((error as Error).message).toBe("vfio-user server /run/test.sock: VFIO_USER_REGION_READ failed: EINVAL (22)");
    expect(() => client.write(0, 0, new Uint8Array(1))).toThrow("VFIO_USER_REGION_WRITE failed: error without an errno");
    expect(client.read(0, 0, 1)).toEqual(bytes([0x5a]));
    client.close();
  });

  it("refuses nonsense arguments before sending anything", async () => {
    const { client, peer } = await openSession([]);
    expect(() => client.read(-1, 0, 4)).toThrow(RangeError);
    expect(() => client.read(0, -4, 4)).toThrow(RangeError);
    expect(() => client.read(0, 0, 1.5)).toThrow(RangeError);
    expect(() => client.regionInfo(2 ** 32)).toThrow(RangeError);
    client.close();
    expect(await peer.messages()).toHaveLength(1);
  });
});

describe("vfio-user DEVICE_RESET", () => {
  it("resets a device whose info has the RESET flag, and says false for one without", async () => {
    const { client, messages } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DEVICE_GET_INFO, bytes(u32(16), u32(3), u32(9), u32(5))) },
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DEVICE_RESET) },
    ]);
    expect(client.reset()).toBe(true);
    client.close();
    expect((await messages())[1]!.bytes).toEqual(command(2, Cmd.DEVICE_RESET));

    const other = await openSession([{ op: "recv" }, { op: "reply", bytes: reply(Cmd.DEVICE_GET_INFO, bytes(u32(16), u32(2), u32(9), u32(5))) }]);
    expect(other.client.reset()).toBe(false);
    other.client.close();
    expect(await other.messages()).toHaveLength(1);
  });
});

describe("vfio-user DMA_MAP and DMA_UNMAP", () => {
  function memfdRegion(iova: number, size: number, options: Partial<VfioDmaRegion> = {}): VfioDmaRegion {
    const fd = memfdCreate("guest-ram");
    ftruncateSync(fd, size);
    const bytes = mapFd(fd, 0, size, { writable: true });
    cleanups.push(() => closeSync(fd));
    return { iova, size, fd, fileOffset: 0, bytes, readable: true, writable: true, ...options };
  }

  it("maps memory with its memfd (the server writes through it) and unmaps it with the same range", async () => {
    const region = memfdRegion(0x10_0000, 0x2000);
    const { client, messages } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DMA_MAP) },
      { op: "writeFd", fd: 0, offset: 0x10, bytes: bytes([1, 2, 3]) },
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DMA_UNMAP, bytes(u32(24), u32(0), u64(0x10_0000), u64(0x2000))) },
    ]);
    client.dmaMap(region);
    client.dmaUnmap(0x10_0000, 0x2000);
    client.close();
    const sent = await messages();
    expect(sent[0]).toEqual({ bytes: command(1, Cmd.DMA_MAP, u32(32), u32(3), u64(0), u64(0x10_0000), u64(0x2000)), fdCount: 1 });
    expect(sent[1]).toEqual({ bytes: command(2, Cmd.DMA_UNMAP, u32(24), u32(0), u64(0x10_0000), u64(0x2000)), fdCount: 0 });
    expect(region.bytes.subarray(0x10, 0x13)).toEqual(bytes([1, 2, 3]));
  });

  it("maps memory without a file, read-only, with offset 0 and no fd", async () => {
    const { client, messages } = await openSession([{ op: "recv" }, { op: "reply", bytes: reply(Cmd.DMA_MAP) }]);
    client.dmaMap({ iova: 0x2000, size: 0x1000, fd: -1, fileOffset: 0x5000, bytes: new Uint8Array(0x1000), readable: true, writable: false });
    client.close();
    expect((await messages())[0]).toEqual({ bytes: command(1, Cmd.DMA_MAP, u32(32), u32(1), u64(0), u64(0x2000), u64(0x1000)), fdCount: 0 });
  });

  it("refuses overlaps, unaligned ranges, too many maps and unknown unmaps before sending", async () => {
    const { client, peer } = await openSession([1, 2, 3].flatMap(() => [{ op: "recv" as const }, { op: "reply" as const, bytes: reply(Cmd.DMA_MAP) }]));
    const plain = (iova: number, size = 0x1000): VfioDmaRegion => ({ iova, size, fd: -1, fileOffset: 0, bytes: new Uint8Array(size), readable: true, writable: true });
    client.dmaMap(plain(0));
    expect(() => client.dmaMap(plain(0x800))).toThrow(/multiples of the server's 4096-byte pages/);
    expect(() => client.dmaMap(plain(0, 0x2000))).toThrow(/overlaps the mapping at 0x0/);
    expect(() => client.dmaMap({ ...plain(0x1000), bytes: new Uint8Array(16) })).toThrow(/given only 16 bytes/);
    client.dmaMap(plain(0x1000));
    client.dmaMap(plain(0x2000));
    expect(() => client.dmaMap(plain(0x3000))).toThrow(/at most 3 DMA mappings/);
    expect(() => client.dmaUnmap(0x1000, 0x2000)).toThrow(/no DMA mapping is exactly/);
    client.close();
    expect(await peer.messages()).toHaveLength(4);
  });

  it("keeps no mapping the server refused", async () => {
    const { client, messages } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: errorReply(Cmd.DMA_MAP, 17) },
    ]);
    const region = { iova: 0, size: 0x1000, fd: -1, fileOffset: 0, bytes: new Uint8Array(0x1000), readable: true, writable: true };
    expect(() => client.dmaMap(region)).toThrow("VFIO_USER_DMA_MAP failed: EEXIST (17)");
    expect(() => client.dmaUnmap(0, 0x1000)).toThrow(/no DMA mapping/);
    client.close();
    expect(await messages()).toHaveLength(1);
  });

  it("reports no reserved ranges (vfio-user has no IOVA limits to report)", async () => {
    const { client, peer } = await openSession([]);
    expect(client.reservedRanges()).toEqual([]);
    client.close();
    await peer.done;
  });
});
