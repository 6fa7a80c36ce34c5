// VFIO_USER_VERSION against a scripted server: what the client proposes, which answers it takes (and the limits
// it keeps from them), and which it refuses with a clear error.
import { describe, expect, it } from "vitest";
import { VfioUserClient } from "../src/vfio-user/client.js";
import { VfioUserCommandError, VfioUserProtocolError, VfioUserTimeoutError } from "../src/vfio-user/errors.js";
import { handshake } from "./support/handshake.js";
import { startPeer, type PeerStep } from "./support/peer.js";
import { bytes, Cmd, COMMAND, errorReply, reply, u16, u32, versionPayload } from "./support/wire.js";

async function connectWith(steps: PeerStep[], timeoutMs = 2000) {
  const peer = startPeer(steps);
  await peer.ready;
  const connect = () => VfioUserClient.fromSocket(peer.clientSocket, "/run/test.sock", { timeoutMs });
  return { peer, connect };
}

describe("vfio-user VERSION", () => {
  it("proposes 0.1 with its capabilities as NUL-terminated JSON in message 0", async () => {
    const { peer, connect } = await connectWith(handshake());
    const client = connect();
    client.close();
    const [proposal] = await peer.messages();
    const data = proposal!.bytes;
    expect([...data.subarray(0, 12)]).toEqual([...u16(0), ...u16(Cmd.VERSION), ...u32(data.length), ...u32(COMMAND)]);
    expect([...data.subarray(16, 20)]).toEqual([...u16(0), ...u16(1)]);
    expect(data[data.length - 1]).toBe(0);
    const json = JSON.parse(new TextDecoder().decode(data.subarray(20, data.length - 1)));
    expect(json).toEqual({ capabilities: { max_msg_fds: 8, max_data_xfer_size: 1048576, pgsizes: 4096, max_dma_maps: 65535 } });
  });

  it("keeps the server's limits, with the spec's defaults for what it leaves out", async () => {
    let { peer, connect } = await connectWith(handshake({ max_msg_fds: 4, max_data_xfer_size: 65536, pgsizes: 4096 | 2097152, max_dma_maps: 16 }));
    let client = connect();
    expect(client.limits).toEqual({ major: 0, minor: 1, maxMsgFds: 4, maxDataXferSize: 65536, maxDmaMaps: 16, pgsizes: 4096n | 2097152n, minPageSize: 4096 });
    expect(client.name).toBe("vfio-user /run/test.sock");
    client.close();
    await peer.done;

    ({ peer, connect } = await connectWith([{ op: "recv" }, { op: "reply", bytes: reply(Cmd.VERSION, versionPayload(0, 0)) }]));
    client = connect();
    expect(client.limits).toEqual({ major: 0, minor: 0, maxMsgFds: 1, maxDataXferSize: 1048576, maxDmaMaps: 65535, pgsizes: 4096n, minPageSize: 4096 });
    client.close();
    await peer.done;
  });

  const refusals: [string, Uint8Array, RegExp][] = [
    ["another major version", versionPayload(1, 0, "{}"), /speaks vfio-user 1\.0; this client speaks major version 0 only/],
    ["a higher minor version", versionPayload(0, 2, "{}"), /answered minor version 2, above the 1 this client proposed/],
    ["migration", versionPayload(0, 1, JSON.stringify({ capabilities: { migration: { pgsize: 4096 } } })), /requires live migration/],
    ["twin sockets", versionPayload(0, 1, JSON.stringify({ capabilities: { twin_socket: { supported: true, fd_index: 0 } } })), /twin-socket mode/],
    ["JSON that is not JSON", versionPayload(0, 1, "{capabilities"), /not UTF-8 JSON/],
    ["JSON that is not an object", versionPayload(0, 1, "[1]"), /JSON is not an object/],
    ["capabilities that are not an object", versionPayload(0, 1, '{"capabilities":3}'), /capabilities are not an object/],
    ["a max_msg_fds that is not a count", versionPayload(0, 1, '{"capabilities":{"max_msg_fds":-1}}'), /max_msg_fds is -1/],
    ["a zero max_data_xfer_size", versionPayload(0, 1, '{"capabilities":{"max_data_xfer_size":0}}'), /max_data_xfer_size is 0/],
    ["pgsizes that are not a bitmap", versionPayload(0, 1, '{"capabilities":{"pgsizes":"4k"}}'), /pgsizes is "4k"/],
    ["a reply too short for the version", bytes(u16(0)), /fewer than the version numbers/],
    ["bytes that are not UTF-8", bytes(u16(0), u16(1), [0xff, 0xfe, 0]), /not UTF-8 JSON/],
  ];
  for (const [what, payload, message] of refusals) {
    it(`refuses ${what}, naming the server`, async () => {
      const { peer, connect } = await connectWith([{ op: "recv" }, { op: "reply", bytes: reply(Cmd.VERSION, payload) }]);
      expect(connect).toThrowError(VfioUserProtocolError);
      await peer.done;
      const again = await connectWith([{ op: "recv" }, { op: "reply", bytes: reply(Cmd.VERSION, payload) }]);
      expect(again.connect).toThrow(new RegExp(`^vfio-user server /run/test\\.sock: .*${message.source}`));
      await again.peer.done;
    });
  }

  it("reports an error reply to VERSION with its errno", async () => {
    const { peer, connect } = await connectWith([{ op: "recv" }, { op: "reply", bytes: errorReply(Cmd.VERSION, 95) }]);
    expect(connect).toThrowError(VfioUserCommandError);
    await peer.done;
    const again = await connectWith([{ op: "recv" }, { op: "reply", bytes: errorReply(Cmd.VERSION, 95) }]);
    expect(again.connect).toThrow("vfio-user server /run/test.sock: VFIO_USER_VERSION failed: EOPNOTSUPP (95)");
    await again.peer.done;
  });

  it("gives up on a server that never answers", async () => {
    const { peer, connect } = await connectWith([{ op: "recv" }, { op: "sleep", ms: 400 }], 150);
    const started = Date.now();
    expect(connect).toThrowError(VfioUserTimeoutError);
    expect(Date.now() - started).toBeLessThan(1000);
    await peer.done;
  });

  it("says a server that hangs up during VERSION closed the connection", async () => {
    const { peer, connect } = await connectWith([{ op: "recv" }, { op: "close" }]);
    expect(connect).toThrow("vfio-user server /run/test.sock closed the connection");
    await peer.done;
  });

  it("says when nothing listens at the path", () => {
    expect(() => VfioUserClient.connect("/nonexistent/vfio-user.sock")).toThrow(/cannot connect to \/nonexistent\/vfio-user\.sock \(ENOENT\)/);
  });
});
