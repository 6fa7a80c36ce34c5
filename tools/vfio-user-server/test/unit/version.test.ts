import { describe, expect, it } from "vitest";
import { DEFAULT_CAPABILITIES, encodeVersionReply, parseVersion } from "../../src/protocol/version.js";
import { ProtocolError } from "../../src/protocol/errors.js";
import { versionPayload } from "../support/wire.js";

describe("VERSION", () => {
  it("takes the client's capabilities and defaults what it leaves out", () => {
    const p = parseVersion(versionPayload(0, 1, '{"capabilities":{"max_msg_fds":3,"max_dma_maps":10,"pgsizes":18446744073709547520}}'));
    expect(p).toEqual({ major: 0, minor: 1, capabilities: { maxMsgFds: 3, maxDataXferSize: 1 << 20, maxDmaMaps: 10, pgsizes: 18446744073709547520 } });
    expect(parseVersion(versionPayload(0, 1)).capabilities).toBe(DEFAULT_CAPABILITIES);
    expect(parseVersion(versionPayload(0, 1, "{}")).capabilities).toBe(DEFAULT_CAPABILITIES);
    // Without the terminating NUL the data is still read.
    expect(parseVersion(versionPayload(0, 1, '{"capabilities":{"max_msg_fds":2}}').subarray(0, -1)).capabilities.maxMsgFds).toBe(2);
  });

  it("refuses malformed data with EINVAL", () => {
    for (const json of ["", "x", "null", "3", '{"capabilities":3}', '{"capabilities":{"max_msg_fds":-1}}', '{"capabilities":{"max_msg_fds":1.5}}', '{"capabilities":{"pgsizes":"4k"}}', '{"capabilities":{"twin_socket":true}}', '{"capabilities":{"write_multiple":1}}']) {
      if (json === "") continue;
      expect(() => parseVersion(versionPayload(0, 1, json))).toThrow(ProtocolError);
    }
    expect(() => parseVersion(Uint8Array.of(0, 0, 1))).toThrow(/at least 4/);
    expect(() => parseVersion(Uint8Array.of(0, 0, 1, 0, 0xff, 0xfe, 0))).toThrow(/not JSON/);
  });

  it("answers major 0, the lower minor, and NUL-terminated JSON", () => {
    const reply = encodeVersionReply({ major: 0, minor: 5, capabilities: DEFAULT_CAPABILITIES });
    expect([...reply.subarray(0, 4)]).toEqual([0, 0, 1, 0]);
    expect(reply[reply.length - 1]).toBe(0);
    expect(JSON.parse(new TextDecoder().decode(reply.subarray(4, -1))).capabilities.max_msg_fds).toBe(16);
  });
});
