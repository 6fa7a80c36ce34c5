// A server that is slow, dies, sends garbage or malformed replies, or attaches fds nobody asked for: the client
// times out, reports the loss once, refuses bad replies with clear errors and keeps working where it can, and
// never leaks an fd.
import { describe, expect, it } from "vitest";
import { VfioBackendLostError } from "../src/backend/backend.js";
import { VfioUserProtocolError, VfioUserTimeoutError } from "../src/vfio-user/errors.js";
import type { VfioUserClient } from "../src/vfio-user/client.js";
import { openSession } from "./support/handshake.js";
import type { PeerStep } from "./support/peer.js";
import { bytes, Cmd, COMMAND, errorReply, message, reply, u16, u32, u64 } from "./support/wire.js";

const deviceInfoReply = reply(Cmd.DEVICE_GET_INFO, bytes(u32(16), u32(3), u32(9), u32(5)));

function lostPromise(client: VfioUserClient): { reasons: string[]; first: Promise<string> } {
  const reasons: string[] = [];
  const first = new Promise<string>((resolve) =>
    client.onLost((reason) => {
      reasons.push(reason);
      resolve(reason);
    }),
  );
  return { reasons, first };
}

describe("vfio-user timeouts", () => {
  it("gives up after the timeout, then drops the late reply and goes on", async () => {
    const { client, messages } = await openSession(
      [
        { op: "recv" },
        { op: "sleep", ms: 700 },
        { op: "reply", bytes: reply(Cmd.REGION_READ, bytes(u64(0), u32(0), u32(1), [0x11])) },
        { op: "recv" },
        { op: "reply", bytes: deviceInfoReply },
      ],
      undefined,
      { timeoutMs: 500 },
    );
    const started = Date.now();
    expect(() => client.read(0, 0, 1)).toThrow(new VfioUserTimeoutError("vfio-user server /run/test.sock", "VFIO_USER_REGION_READ", 500));
    expect(Date.now() - started).toBeGreaterThanOrEqual(495);
    expect(Date.now() - started).toBeLessThan(1500);
    // The read's reply arrives first and answers nothing now.
    expect(() => client.deviceInfo()).not.toThrow();
    client.close();
    expect(await messages()).toHaveLength(2);
  });
});

describe("vfio-user server loss", () => {
  it("reports a server that hangs up between calls once, naming the socket, and refuses calls after", async () => {
    const { client, peer } = await openSession([{ op: "sleep", ms: 30 }, { op: "close" }]);
    const lost = lostPromise(client);
    const reason = await lost.first;
    expect(reason).toBe("vfio-user server /run/test.sock closed the connection");
    expect(() => client.deviceInfo()).toThrow(new VfioBackendLostError(reason));
    expect(() => client.read(0, 0, 4)).toThrowError(VfioBackendLostError);
    const late = await new Promise<string>((resolve) => client.onLost(resolve));
    expect(late).toBe(reason);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(lost.reasons).toEqual([reason]);
    client.close();
    await peer.done;
  });

  it("fails the call a server dies in, and reports the loss once", async () => {
    const { client, peer } = await openSession([{ op: "recv" }, { op: "close" }]);
    const lost = lostPromise(client);
    expect(() => client.write(2, 0x83c, bytes(u32(0xdead0001)))).toThrow(new VfioBackendLostError("vfio-user server /run/test.sock closed the connection"));
    await lost.first;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(lost.reasons).toHaveLength(1);
    client.close();
    await peer.done;
  });

  it("returns a reply that came before the hang-up, then reports the loss", async () => {
    const { client, peer } = await openSession([{ op: "recv" }, { op: "reply", bytes: deviceInfoReply }, { op: "close" }]);
    const lost = lostPromise(client);
    expect(client.deviceInfo().numRegions).toBe(9);
    expect(await lost.first).toMatch(/closed the connection/);
    client.close();
    await peer.done;
  });

  it("does not report a loss for close()", async () => {
    const { client, peer } = await openSession([{ op: "sleep", ms: 50 }, { op: "close" }]);
    const lost = lostPromise(client);
    client.close();
    await peer.done;
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(lost.reasons).toEqual([]);
    expect(() => client.deviceInfo()).toThrow("vfio-user /run/test.sock: used after close()");
  });

  const garbage: [string, Uint8Array, RegExp][] = [
    ["a msg_size below the header", bytes(u16(0), u16(4), u32(8), u32(1), u32(0)), /msg_size 8, smaller than the 16-byte header/],
    ["a msg_size beyond any message", bytes(u16(0), u16(4), u32(0x7fff_0000), u32(1), u32(0)), /msg_size 2147418112, above the \d+ bytes this client accepts/],
    ["a message type that does not exist", bytes(u16(0), u16(4), u32(16), u32(3), u32(0)), /has type 3/],
  ];
  for (const [what, bytesSent, why] of garbage) {
    it(`loses a server that sends ${what} while a call waits`, async () => {
      const { client, peer } = await openSession([{ op: "recv" }, { op: "send", bytes: bytesSent }, { op: "sleep", ms: 50 }]);
      const lost = lostPromise(client);
      expect(() => client.deviceInfo()).toThrow(new RegExp(`^vfio-user server /run/test\\.sock sent a malformed message: .*${why.source}`));
      expect(await lost.first).toMatch(why);
      client.close();
      await peer.done;
    });
  }

  it("loses a server that sends garbage between calls", async () => {
    const { client, peer } = await openSession([{ op: "send", bytes: bytes(u16(0), u16(11), u32(4), u32(0), u32(0)) }]);
    const reason = await lostPromise(client).first;
    expect(reason).toMatch(/^vfio-user server \/run\/test\.sock sent a malformed message: .*msg_size 4/);
    expect(() => client.irqInfo(0)).toThrowError(VfioBackendLostError);
    client.close();
    await peer.done;
  });
});

describe("vfio-user malformed replies", () => {
  // Region info replies: [argsz, flags, index, cap_offset, size, offset] then capabilities.
  const regionHeader = (argsz: number, flags: number, index: number, capOffset: number, size: number | bigint) =>
    bytes(u32(argsz), u32(flags), u32(index), u32(capOffset), u64(size), u64(0));
  const sparse = (next: number, areas: [number, number][], nr = areas.length) =>
    bytes([1, 0, 1, 0], u32(next), u32(nr), u32(0), ...areas.map(([offset, size]) => bytes(u64(offset), u64(size))));

  const cases: [string, (client: VfioUserClient) => unknown, Uint8Array, RegExp][] = [
    ["a reply for another command", (c) => c.deviceInfo(), reply(Cmd.DEVICE_GET_IRQ_INFO, bytes(u32(16), u32(0), u32(0), u32(0))), /reply to VFIO_USER_DEVICE_GET_INFO \(message \d+\) is for VFIO_USER_DEVICE_GET_IRQ_INFO/],
    ["a device info reply too short", (c) => c.deviceInfo(), reply(Cmd.DEVICE_GET_INFO, bytes(u32(16), u32(3))), /malformed: vfio_device_info: 8 bytes, vfio_device_info needs at least 16/],
    ["a device info argsz below the structure", (c) => c.deviceInfo(), reply(Cmd.DEVICE_GET_INFO, bytes(u32(4), u32(3), u32(9), u32(5))), /argsz 4 is smaller/],
    ["IRQ info for another index", (c) => c.irqInfo(1), reply(Cmd.DEVICE_GET_IRQ_INFO, bytes(u32(16), u32(0), u32(2), u32(1))), /answers for IRQ index 2/],
    ["a read reply with too few bytes", (c) => c.read(0, 0, 4), reply(Cmd.REGION_READ, bytes(u64(0), u32(0), u32(4), [1])), /has 17 payload bytes, not 20/],
    ["a read reply for another offset", (c) => c.read(0, 8, 1), reply(Cmd.REGION_READ, bytes(u64(0), u32(0), u32(1), [1])), /is for region 0 offset 0x0 count 1, not region 0 offset 0x8 count 1/],
    ["a write reply with another count", (c) => c.write(1, 0, bytes([1, 2])), reply(Cmd.REGION_WRITE, bytes(u64(0), u32(1), u32(1))), /count 1, not region 1 offset 0x0 count 2/],
    ["an unmap reply for another range", (c) => c.dmaUnmap(0, 0x1000), reply(Cmd.DMA_UNMAP, bytes(u32(24), u32(0), u64(0x1000), u64(0x1000))), /echoes \[0x1000, \+0x1000\)/],
    ["region info shorter than the structure", (c) => c.regionInfo(0), reply(Cmd.DEVICE_GET_REGION_INFO, bytes(u32(32), u32(3))), /needs at least 32/],
    ["region info for another region", (c) => c.regionInfo(1), reply(Cmd.DEVICE_GET_REGION_INFO, regionHeader(32, 3, 2, 0, 0x100)), /answers for region 2/],
    ["a region size beyond 2^53", (c) => c.regionInfo(0), reply(Cmd.DEVICE_GET_REGION_INFO, regionHeader(32, 3, 0, 0, 1n << 60n)), /vfio_region_info\.size is 0x1000000000000000, beyond 2\^53/],
    ["a capability chain that loops", (c) => c.regionInfo(0), reply(Cmd.DEVICE_GET_REGION_INFO, bytes(regionHeader(64, 0xb, 0, 32, 0x1000), [9, 0, 1, 0], u32(48), zeros8(), [9, 0, 1, 0], u32(32), zeros8())), /capability chain loops back to offset 32/],
    ["a capability outside the reply", (c) => c.regionInfo(0), reply(Cmd.DEVICE_GET_REGION_INFO, bytes(regionHeader(40, 0xb, 0, 36, 0x1000), zeros8())), /capability at offset 36 lies outside the 40 bytes/],
    ["a capability inside the structure", (c) => c.regionInfo(0), reply(Cmd.DEVICE_GET_REGION_INFO, bytes(regionHeader(40, 0xb, 0, 8, 0x1000), zeros8())), /capability at offset 8 would overlap/],
    ["a sparse area count beyond the reply", (c) => c.regionInfo(0), reply(Cmd.DEVICE_GET_REGION_INFO, bytes(regionHeader(64, 0xb, 0, 32, 0x1000), sparse(0, [[0, 0x1000]], 0xffff_ffff))), /claims 4294967295 vfio_region_sparse_mmap_area entries, the reply has room for 1/],
    ["a sparse area outside the region", (c) => c.regionInfo(0), reply(Cmd.DEVICE_GET_REGION_INFO, bytes(regionHeader(64, 0xb, 0, 32, 0x1000), sparse(0, [[0x800, 0x1000]]))), /area \[0x800, \+0x1000\) lies outside the 0x1000-byte region/],
    ["a mappable region without its fd", (c) => c.regionInfo(0), reply(Cmd.DEVICE_GET_REGION_INFO, regionHeader(32, 7, 0, 0, 0x1000)), /marks region 0 mappable but sent no fd/],
    ["an argsz it had room for but did not send", (c) => c.regionInfo(0), reply(Cmd.DEVICE_GET_REGION_INFO, regionHeader(96, 0xb, 0, 32, 0x1000)), /claims argsz 96 but sent 32 bytes/],
    ["an argsz beyond any real capability list", (c) => c.regionInfo(0), reply(Cmd.DEVICE_GET_REGION_INFO, regionHeader(0x20000, 0xb, 0, 0, 0x1000)), /asks for argsz 131072, more than the 65536/],
  ];

  it("refuses each with an error naming the server and command, and keeps working", async () => {
    const steps: PeerStep[] = [];
    for (const [, , replyBytes] of cases) steps.push({ op: "recv" }, { op: "reply", bytes: replyBytes });
    steps.push({ op: "recv" }, { op: "reply", bytes: deviceInfoReply });
    const { client, peer } = await openSession([{ op: "recv" }, { op: "reply", bytes: reply(Cmd.DMA_MAP) }, ...steps]);
    client.dmaMap({ iova: 0, size: 0x1000, fd: -1, fileOffset: 0, bytes: new Uint8Array(0x1000), readable: true, writable: true });
    for (const [what, call, , why] of cases) {
      let error: unknown;
      try {
        call(client);
      } catch (caught) {
        error = caught;
      }
      expect(error, what).toBeInstanceOf(VfioUserProtocolError);
      expect((error as Error).message, what).toMatch(/^vfio-user server \/run\/test\.sock: the reply to VFIO_USER_/);
      expect((error as Error).message, what).toMatch(why);
    }
    expect(client.deviceInfo().numIrqs).toBe(5);
    client.close();
    await peer.messages();
  });

  it("refuses a server whose capabilities keep growing", async () => {
    const growing = (argsz: number) => reply(Cmd.DEVICE_GET_REGION_INFO, bytes(u32(argsz), u32(0xb), u32(0), u32(0), u64(0x1000), u64(0)));
    const { client, messages } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: growing(300) },
      { op: "recv" },
      { op: "reply", bytes: growing(400) },
      { op: "recv" },
      { op: "reply", bytes: growing(500) },
    ]);
    expect(() => client.regionInfo(0)).toThrow(/still needs argsz 500 after 3 requests/);
    client.close();
    expect(await messages()).toHaveLength(3);
  });
});

function zeros8(): number[] {
  return [0, 0, 0, 0, 0, 0, 0, 0];
}

describe("vfio-user fds nobody asked for", () => {
  it("closes fds on replies, error replies, stale replies, server commands and refused replies; keeps a region's own fd", async () => {
    const region = (index: number) => bytes(u32(32), u32(7), u32(index), u32(0), u64(0x1000), u64(0));
    const { client, peer } = await openSession([
      { op: "recv" },
      { op: "reply", bytes: deviceInfoReply, fds: [{ probe: "device-info" }] },
      { op: "recv" },
      { op: "reply", bytes: errorReply(Cmd.DEVICE_GET_IRQ_INFO, 22), fds: [{ probe: "error-reply" }] },
      { op: "recv" },
      { op: "send", bytes: message(0x4444, Cmd.DEVICE_GET_INFO, 1, bytes(u32(16), u32(0), u32(0), u32(0))), fds: [{ probe: "stale-reply" }] },
      { op: "send", bytes: message(0x99, Cmd.DMA_READ, COMMAND, bytes(u64(0), u64(1))), fds: [{ probe: "server-command" }] },
      { op: "recv" }, // the client's answer to the DMA_READ
      { op: "reply", bytes: reply(Cmd.DEVICE_GET_REGION_INFO, region(4)), fds: [{ memfd: bytes([1]) }, { probe: "second-region-fd" }] },
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DEVICE_GET_REGION_INFO, region(4)), fds: [{ probe: "refused" }] },
      { op: "recv" },
      { op: "reply", bytes: reply(Cmd.DEVICE_GET_REGION_INFO, region(3)), fds: [{ probe: "kept" }] },
      { op: "recv" },
      ...["device-info", "error-reply", "stale-reply", "server-command", "second-region-fd", "refused", "kept"].map((probe) => ({ op: "probe" as const, probe })),
      { op: "reply", bytes: deviceInfoReply },
    ]);
    client.deviceInfo();
    expect(() => client.irqInfo(0)).toThrow(/EINVAL/);
    expect(client.regionInfo(4).mmap).toBeDefined();
    expect(() => client.regionInfo(3)).toThrow(/answers for region 4/);
    expect(client.regionInfo(3).mmap).toBeDefined();
    client.deviceInfo();
    client.close();
    expect(await peer.probes()).toEqual({
      "device-info": true,
      "error-reply": true,
      "stale-reply": true,
      "server-command": true,
      "second-region-fd": true,
      refused: true,
      // Region 3's fd is the client's until close(): the probe does see an fd that is still held.
      kept: false,
    });
  });
});

describe("vfio-user partial reads", () => {
  it("reassembles replies that arrive in small pieces, fds with the first piece", async () => {
    const region = bytes(u32(64), u32(0xf), u32(4), u32(32), u64(0x4000), u64(0), [1, 0, 1, 0], u32(0), u32(1), u32(0), u64(0x1000), u64(0x3000));
    const big = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 7) & 0xff);
    const { client } = await openSession(
      [
        { op: "recv" },
        { op: "reply", bytes: deviceInfoReply, chunks: [1, 3, 5, 7], pauseMs: 15 },
        { op: "recv" },
        { op: "reply", bytes: reply(Cmd.DEVICE_GET_REGION_INFO, region), fds: [{ memfd: bytes([7]) }], chunks: [10, 30, 20], pauseMs: 15 },
        { op: "recv" },
        // Two messages in one piece: a DMA request and the reply behind it.
        { op: "send", bytes: bytes(message(0x50, Cmd.DMA_READ, COMMAND, bytes(u64(0), u64(1))), message(3, Cmd.REGION_READ, 1, bytes(u64(0), u32(2), u32(big.length), big))) },
        { op: "recv" },
      ],
      { max_data_xfer_size: 1 << 20 },
    );
    expect(client.deviceInfo()).toEqual({ flags: 3, numRegions: 9, numIrqs: 5 });
    expect(client.regionInfo(4).mmap?.areas).toEqual([{ offset: 0x1000, size: 0x3000 }]);
    expect(client.read(2, 0, big.length)).toEqual(big);
    client.close();
  });
});
