import { describe, expect, it } from "vitest";
import { FrameDecoder } from "../../src/protocol/framing.js";
import { FramingError } from "../../src/protocol/errors.js";
import { message } from "../support/wire.js";

const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

describe("FrameDecoder", () => {
  it("cuts messages by their size however the bytes arrive", () => {
    const a = message(1, 9, new Uint8Array([1, 2, 3]));
    const b = message(2, 10, new Uint8Array(40).fill(7));
    const stream = concat(a, b, a);
    for (const step of [1, 3, 16, 19, 100]) {
      const decoder = new FrameDecoder(4096);
      const out: number[] = [];
      for (let i = 0; i < stream.length; i += step) {
        decoder.push(stream.subarray(i, i + step));
        for (let m = decoder.next(); m; m = decoder.next()) out.push(m.header.id, m.payload.length);
      }
      expect(out).toEqual([1, 3, 2, 40, 1, 3]);
      expect(decoder.buffered).toBe(0);
    }
  });

  it("gives a chunk's fds to the last message starting before the chunk's end", () => {
    const a = message(1, 2, new Uint8Array(32));
    const b = message(2, 8, new Uint8Array(20));
    const decoder = new FrameDecoder(4096);
    // a arrives alone, then b with its fds together with the tail of nothing else.
    decoder.push(a);
    decoder.push(b, [10, 11]);
    expect(decoder.next()!.fds).toEqual([]);
    expect(decoder.next()!.fds).toEqual([10, 11]);
    // One chunk holding the end of one message and a whole second one that carried an fd.
    decoder.push(a.subarray(0, 20));
    decoder.push(concat(a.subarray(20), b), [12]);
    expect(decoder.next()!.fds).toEqual([]);
    expect(decoder.next()!.fds).toEqual([12]);
    // A message whose first part carried the fd and whose rest came later.
    decoder.push(b.subarray(0, 10), [13]);
    decoder.push(b.subarray(10));
    expect(decoder.next()!.fds).toEqual([13]);
    expect(decoder.takeUnclaimedFds()).toEqual([]);
    decoder.push(b.subarray(0, 5), [14]);
    expect(decoder.next()).toBeUndefined();
    expect(decoder.takeUnclaimedFds()).toEqual([14]);
  });

  it("throws FramingError on a size below the header or above the limit", () => {
    const small = message(1, 1);
    small[4] = 15;
    const decoder = new FrameDecoder(64);
    decoder.push(small);
    expect(() => decoder.next()).toThrow(FramingError);
    const big = new FrameDecoder(64);
    big.push(message(1, 1, new Uint8Array(49)));
    expect(() => big.next()).toThrow(/exceeds the limit/);
  });
});
