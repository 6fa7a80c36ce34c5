import { describe, expect, it } from "vitest";
import { SignalMsiVectors, type MsiMessage } from "../src/index.js";

describe("SignalMsiVectors", () => {
  it("signals the programmed message on trigger and drops triggers of unprogrammed vectors", () => {
    const sent: MsiMessage[] = [];
    const factory = new SignalMsiVectors({ signal: (m) => void sent.push(m) });
    const set = factory.create("dev MSI-X", 2);
    expect(set.count).toBe(2);
    set.vector(1).trigger();
    expect(sent).toEqual([]);
    expect(factory.dropped).toBe(1);
    set.batch(() => set.vector(1).program({ address: 0xfee0_0000, data: 0x41 }));
    set.vector(1).trigger();
    set.vector(1).program(undefined);
    set.vector(1).trigger();
    expect(sent).toEqual([{ address: 0xfee0_0000, data: 0x41 }]);
    expect(factory.signals).toBe(1);
    expect(set.vector(0).eventFd).toBeUndefined();
    expect(() => set.vector(2)).toThrow(RangeError);
    set.close();
    set.close();
  });
});
