import { describe, expect, it } from "vitest";
import { EdgeForwardingLine, SharedLine } from "../src/index.js";

describe("interrupt lines", () => {
  it("forwards only level changes", () => {
    const seen: boolean[] = [];
    const line = new EdgeForwardingLine((l) => seen.push(l));
    line.set(true);
    line.set(true);
    line.set(false);
    line.set(false);
    expect(seen).toEqual([true, false]);
    expect(line.level).toBe(false);
  });

  it("a shared line stays asserted while any source asserts it", () => {
    const seen: boolean[] = [];
    const shared = new SharedLine(new EdgeForwardingLine((l) => seen.push(l)));
    const a = shared.source();
    const b = shared.source();
    a.set(true);
    b.set(true);
    a.set(false);
    expect(seen).toEqual([true]);
    b.set(false);
    expect(seen).toEqual([true, false]);
  });
});
