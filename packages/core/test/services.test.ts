import { describe, expect, it } from "vitest";
import { MmioBackedMemoryMapper, createMmioSpace } from "../src/index.js";

describe("MmioBackedMemoryMapper", () => {
  it("maps bytes into the MMIO space, honours read-only and unmaps", () => {
    const mmio = createMmioSpace();
    const mapper = new MmioBackedMemoryMapper(mmio);
    const bytes = mapper.allocate(0x1000);
    const m = mapper.map(0xe000_0000, bytes);
    mmio.write(0xe000_0004, 4, 0xa1b2c3d4);
    expect(bytes[4]).toBe(0xd4);
    expect(mmio.read(0xe000_0006, 2)).toBe(0xa1b2);
    m.remove();
    expect(mmio.read(0xe000_0004, 4)).toBe(0xffffffff);
    const ro = mapper.map(0xe000_0000, bytes, { readonly: true });
    mmio.write(0xe000_0004, 1, 0);
    expect(bytes[4]).toBe(0xd4);
    ro.remove();
  });
});
