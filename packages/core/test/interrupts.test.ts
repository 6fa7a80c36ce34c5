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

describe("eventfd-driven lines (irqfd)", () => {
  it("a plain line has no irqfd path", () => {
    expect(new EdgeForwardingLine(() => {}).irqfd).toBeUndefined();
    expect(new SharedLine(new EdgeForwardingLine(() => {})).source().irqfd).toBeUndefined();
  });

  it("shared sources offer the target's irqfd path, each registration its own handle", () => {
    const calls: string[] = [];
    const target = new EdgeForwardingLine(
      () => {},
      (trigger, resample) => {
        calls.push(`+${trigger}/${resample}`);
        return { remove: () => calls.push(`-${trigger}`) };
      },
    );
    const shared = new SharedLine(target);
    const a = shared.source();
    const b = shared.source();
    const ha = a.irqfd!(10, 11);
    const hb = b.irqfd!(12, 13);
    ha.remove();
    expect(calls).toEqual(["+10/11", "+12/13", "-10"]);
    hb.remove();
    expect(calls).toEqual(["+10/11", "+12/13", "-10", "-12"]);
  });

  it("levels set on a source still reach the target beside the irqfd path", () => {
    const seen: boolean[] = [];
    const shared = new SharedLine(new EdgeForwardingLine((l) => seen.push(l), () => ({ remove() {} })));
    const a = shared.source();
    a.irqfd!(1, 2);
    a.set(true);
    a.set(false);
    expect(seen).toEqual([true, false]);
  });
});
