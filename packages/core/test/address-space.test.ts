import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AddressConflictError, AddressSpace, createMmioSpace, createPortIoSpace, type IoHandler, type UnhandledAccess } from "../src/index.js";

function recorder(log: string[], tag: string, value = 0x12345678): IoHandler {
  return {
    read: (off, size) => {
      log.push(`${tag} r${size}@${off}`);
      return value & (size === 4 ? 0xffffffff : (1 << (size * 8)) - 1);
    },
    write: (off, size, v) => void log.push(`${tag} w${size}@${off}=${v.toString(16)}`),
  };
}

describe("AddressSpace", () => {
  it("rejects overlapping registrations and names both owners", () => {
    const pio = createPortIoSpace();
    pio.register(0x3f8, 8, "serial0", recorder([], "s"));
    expect(() => pio.register(0x3fc, 8, "testdev", recorder([], "t"))).toThrowError(AddressConflictError);
    expect(() => pio.register(0x3f0, 9, "testdev", recorder([], "t"))).toThrowError(/testdev .*overlaps serial0/);
    // Adjacent ranges do not overlap.
    pio.register(0x3f0, 8, "left", recorder([], "l"));
    pio.register(0x400, 8, "right", recorder([], "r"));
    expect(pio.list().map((r) => r.owner)).toEqual(["left", "serial0", "right"]);
  });

  it("rejects ranges outside the space", () => {
    const pio = createPortIoSpace();
    expect(() => pio.register(0xfffc, 8, "x", recorder([], "x"))).toThrow(/invalid range/);
    expect(() => pio.register(0, 0, "x", recorder([], "x"))).toThrow(/invalid range/);
  });

  it("routes accesses to the right handler with range-relative offsets and passes widths through", () => {
    const log: string[] = [];
    const mmio = createMmioSpace();
    mmio.register(0xd000_0000, 0x1000, "a", recorder(log, "a"));
    mmio.register(0xfe00_0000_0, 0x100, "b", { ...recorder(log, "b"), read64: (o) => (log.push(`b r8@${o}`), 0x1122334455667788n), write64: (o, v) => void log.push(`b w8@${o}=${v.toString(16)}`) });
    expect(mmio.read(0xd000_0010, 1)).toBe(0x78);
    expect(mmio.read(0xd000_0010, 2)).toBe(0x5678);
    expect(mmio.read(0xd000_0010, 4)).toBe(0x12345678);
    mmio.write(0xd000_0ffc, 4, 0xcafe);
    expect(mmio.read64(0xfe00_0000_8)).toBe(0x1122334455667788n);
    mmio.write64(0xfe00_0000_8, 0xabcdn);
    expect(log).toEqual(["a r1@16", "a r2@16", "a r4@16", "a w4@4092=cafe", "b r8@8", "b w8@8=abcd"]);
  });

  it("splits 8-byte accesses for handlers without read64/write64, low half first", () => {
    const log: string[] = [];
    const mmio = createMmioSpace();
    mmio.register(0x1000, 0x100, "a", recorder(log, "a", 0x01020304));
    expect(mmio.read64(0x1008)).toBe(0x0102030401020304n);
    mmio.write64(0x1010, 0xaaaaaaaa_bbbbbbbbn);
    expect(log).toEqual(["a r4@8", "a r4@12", "a w4@16=bbbbbbbb", "a w4@20=aaaaaaaa"]);
  });

  it("counts unhandled accesses, reads all-ones and traces them", () => {
    const trace: UnhandledAccess[] = [];
    const pio = createPortIoSpace();
    pio.trace = (a) => trace.push(a);
    expect(pio.read(0x80, 1)).toBe(0xff);
    expect(pio.read(0x80, 2)).toBe(0xffff);
    expect(pio.read(0x80, 4)).toBe(0xffffffff);
    pio.write(0x80, 1, 7);
    const mmio = createMmioSpace();
    expect(mmio.read64(0x1234)).toBe(0xffffffffffffffffn);
    expect(pio.unhandled).toBe(4);
    expect(mmio.unhandled).toBe(1);
    expect(trace.at(-1)).toEqual({ space: "pio", address: 0x80, size: 1, write: true, value: 7 });
  });

  it("unregister removes the range and a stale lookup cache never routes to it", () => {
    const log: string[] = [];
    const mmio = createMmioSpace();
    const reg = mmio.register(0x2000, 0x10, "a", recorder(log, "a"));
    expect(mmio.read(0x2004, 4)).toBe(0x12345678);
    reg.unregister();
    reg.unregister();
    expect(mmio.read(0x2004, 4)).toBe(0xffffffff);
    mmio.register(0x2000, 0x10, "b", recorder(log, "b"));
    expect(log).toEqual(["a r4@4"]);
  });

  it("lookup agrees with a linear scan for random layouts (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ base: fc.integer({ min: 0, max: 0xffc0 }), size: fc.integer({ min: 1, max: 64 }) }), { maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 50 }),
        (wanted, probes) => {
          const space = new AddressSpace("t", 0x1_0000);
          const placed: { base: number; size: number; owner: string }[] = [];
          wanted.forEach((w, i) => {
            const clash = placed.some((p) => w.base < p.base + p.size && p.base < w.base + w.size);
            const tryIt = () => space.register(w.base, w.size, `o${i}`, { read: () => i, write: () => {} });
            if (clash) expect(tryIt).toThrow(AddressConflictError);
            else {
              tryIt();
              placed.push({ ...w, owner: `o${i}` });
            }
          });
          for (const a of probes) {
            const linear = placed.find((p) => a >= p.base && a < p.base + p.size);
            expect(space.find(a)?.owner).toBe(linear?.owner);
          }
        },
      ),
    );
  });
});
