import { EventFd } from "@vmm/host-io";
import { afterEach, describe, expect, it } from "vitest";
import { hostIo } from "./support/gate.js";
import { type RunningServer, startServer } from "./support/server-process.js";
import { Bytes, CMD, EINVAL, ENOSYS, ENOTSUP, ERROR, le, message, REPLY, versionPayload } from "./support/wire.js";

let server: RunningServer | undefined;
afterEach(() => server?.stop());

function versionJson(payload: Uint8Array): unknown {
  expect(payload[payload.length - 1]).toBe(0);
  return JSON.parse(new TextDecoder().decode(payload.subarray(4, payload.length - 1)));
}

describe.skipIf(!hostIo.ok)("VERSION handshake", () => {
  it("answers with the proposed major, the lower minor and the server's capabilities as NUL-terminated JSON", async () => {
    server = await startServer("intx-only");
    const client = server.connect();
    client.send(message(7, CMD.VERSION, versionPayload(0, 1, '{"capabilities":{"max_msg_fds":4,"pgsizes":4096}}')));
    const reply = client.receive();
    expect(reply).toMatchObject({ id: 7, command: CMD.VERSION, flags: REPLY, error: 0 });
    expect(reply.size).toBe(16 + reply.payload.length);
    expect(le(reply.payload, 0, 2)).toBe(0);
    expect(le(reply.payload, 2, 2)).toBe(1);
    expect(versionJson(reply.payload)).toEqual({ capabilities: { max_msg_fds: 16, max_data_xfer_size: 1048576, pgsizes: 4096, max_dma_maps: 256 } });
    client.close();
  });

  it("answers minor 0 to a client proposing 0.0, and 0.1 to one proposing 0.9 without version data", async () => {
    server = await startServer("intx-only");
    const a = server.connect();
    const reply = a.ok(CMD.VERSION, versionPayload(0, 0, "{}"));
    expect(le(reply.payload, 2, 2)).toBe(0);
    a.close();
    await server.exited;
    server = await startServer("intx-only");
    const b = server.connect();
    expect(le(b.ok(CMD.VERSION, versionPayload(0, 9)).payload, 2, 2)).toBe(1);
    b.close();
  });

  it("refuses bad JSON, a non-object, wrong capability types and an unknown major with EINVAL, then accepts a good proposal", async () => {
    server = await startServer("intx-only");
    const client = server.connect();
    expect(client.errno(CMD.VERSION, versionPayload(0, 1, "{not json"))).toBe(EINVAL);
    expect(client.errno(CMD.VERSION, versionPayload(0, 1, "[1,2]"))).toBe(EINVAL);
    expect(client.errno(CMD.VERSION, versionPayload(0, 1, '{"capabilities":{"max_msg_fds":"many"}}'))).toBe(EINVAL);
    expect(client.errno(CMD.VERSION, versionPayload(0, 1, '{"capabilities":{"max_data_xfer_size":0}}'))).toBe(EINVAL);
    expect(client.errno(CMD.VERSION, versionPayload(0, 1, '{"capabilities":[]}'))).toBe(EINVAL);
    expect(client.errno(CMD.VERSION, new Bytes().u16(0).u16(1).raw(new TextEncoder().encode('{"a":1}')).u8(0).u8(0x41).u8(0).done())).toBe(EINVAL);
    expect(client.errno(CMD.VERSION, new Uint8Array([0, 0]))).toBe(EINVAL);
    expect(client.errno(CMD.VERSION, versionPayload(1, 0, "{}"))).toBe(EINVAL);
    // Unknown capabilities are someone else's business: ignored.
    expect(client.ok(CMD.VERSION, versionPayload(0, 1, '{"capabilities":{"future_thing":{"x":1},"write_multiple":false}}')).flags).toBe(REPLY);
    expect(client.errno(CMD.VERSION, versionPayload(0, 1, "{}"))).toBe(EINVAL);
    client.close();
  });

  it("refuses every other command before the handshake", async () => {
    server = await startServer("rtl8168");
    const client = server.connect();
    expect(client.errno(CMD.GET_INFO, new Bytes().u32(16).u32(0).u32(0).u32(0).done())).toBe(EINVAL);
    client.negotiate();
    const info = client.ok(CMD.GET_INFO, new Bytes().u32(16).u32(0).u32(0).u32(0).done());
    expect([le(info.payload, 0, 4), le(info.payload, 4, 4), le(info.payload, 8, 4), le(info.payload, 12, 4)]).toEqual([16, 3, 9, 3]);
    client.close();
  });
});

describe.skipIf(!hostIo.ok)("header handling", () => {
  it("echoes ids, answers nothing to no_reply commands, and refuses unknown types and commands", async () => {
    server = await startServer("intx-only");
    const client = server.connect();
    client.negotiate();
    // A no_reply write, then a read: the next message is the read's reply, showing the write happened first.
    client.send(message(0xfffe, CMD.REGION_WRITE, new Bytes().u64(0x38).u32(0).u32(4).u32(0x1234abcd).done(), 0x10));
    client.send(message(0xffff, CMD.REGION_READ, new Bytes().u64(0x38).u32(0).u32(4).done()));
    const reply = client.receive();
    expect(reply.id).toBe(0xffff);
    expect(le(reply.payload, 16, 4)).toBe(0x1234abcd);
    // A no_reply command that fails gets no reply either.
    client.send(message(1, CMD.REGION_READ, new Uint8Array(3), 0x10));
    expect(client.ok(CMD.REGION_READ, new Bytes().u64(0).u32(0).u32(4).done()).id).not.toBe(1);

    client.send(message(9, CMD.REGION_READ, new Bytes().u64(0).u32(0).u32(4).done(), 0x2));
    expect(client.receive()).toMatchObject({ id: 9, flags: REPLY | ERROR, error: EINVAL, size: 16 });
    expect(client.errno(99)).toBe(ENOSYS);
    expect(client.errno(0)).toBe(ENOSYS);
    expect(client.errno(CMD.DMA_READ, new Bytes().u64(0).u64(4).done())).toBe(EINVAL);
    expect(client.errno(CMD.DMA_WRITE, new Bytes().u64(0).u64(0).done())).toBe(EINVAL);
    expect(client.errno(16, new Bytes().u32(8).u32(0x10001).done())).toBe(ENOTSUP);
    expect(client.errno(CMD.GET_REGION_IO_FDS, new Bytes().u32(32).u32(0).u32(0).u32(0).done())).toBe(ENOTSUP);
    expect(client.errno(CMD.GET_REGION_IO_FDS, new Bytes().u32(32).u32(0).u32(12).u32(0).done())).toBe(EINVAL);
    client.close();
  });

  it("refuses fds sent with a command that takes none", async () => {
    server = await startServer("intx-only");
    const client = server.connect();
    const [a, b] = [new EventFd(), new EventFd()];
    expect(client.errno(CMD.VERSION, versionPayload(0, 1, "{}"), [a.fd])).toBe(EINVAL);
    client.negotiate();
    expect(client.errno(CMD.RESET, undefined, [a.fd, b.fd])).toBe(EINVAL);
    expect(client.errno(CMD.REGION_READ, new Bytes().u64(0).u32(0).u32(4).done(), [b.fd])).toBe(EINVAL);
    expect(client.read32(0, 0)).toBe(0x45545556);
    a.close();
    b.close();
    client.close();
  });

  it("ignores a reply nobody waits for", async () => {
    server = await startServer("intx-only");
    const client = server.connect();
    client.negotiate();
    client.send(message(3, CMD.DMA_READ, new Bytes().u64(0).u64(0).done(), REPLY));
    expect(client.read32(0, 0)).toBe(0x45545556);
    client.close();
  });
});
