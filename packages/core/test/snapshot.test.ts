import { describe, expect, it } from "vitest";
import { SnapshotError, decodeBytes, encodeBytes, stateData, stateInt } from "../src/index.js";

describe("snapshot state helpers", () => {
  it("round-trip bytes through base64, checking the length when asked", () => {
    const bytes = new Uint8Array([0, 1, 2, 254, 255, 7]);
    expect(decodeBytes(encodeBytes(bytes), "x")).toEqual(bytes);
    expect(decodeBytes(encodeBytes(bytes.subarray(2, 5)), "x", 3)).toEqual(new Uint8Array([2, 254, 255]));
    expect(() => decodeBytes(encodeBytes(bytes), "uart", 4)).toThrow(new SnapshotError("uart: 6 bytes, expected 4"));
    expect(() => decodeBytes(12 as never, "uart")).toThrow("uart: not base64 bytes");
    expect(() => decodeBytes("%%", "uart")).toThrow(SnapshotError);
  });

  it("stateData checks the version and the shape; stateInt the range", () => {
    const data = stateData({ version: 2, data: { lcr: 3 } }, "uart", 2);
    expect(stateInt(data, "lcr", "uart", 0, 255)).toBe(3);
    expect(() => stateInt(data, "lcr", "uart", 4, 255)).toThrow("uart: lcr must be an integer in [4, 255], got 3");
    expect(() => stateInt(data, "ier", "uart", 0, 255)).toThrow("uart: ier must be an integer in [0, 255], got nothing");
    expect(() => stateData({ version: 1, data: {} }, "uart", 2)).toThrow("uart: saved state version 1, this build reads version 2");
    expect(() => stateData({ version: 2, data: [1] }, "uart", 2)).toThrow("uart: saved state is not an object");
    expect(() => stateData(undefined, "uart", 2)).toThrow("uart: no saved state");
  });
});
