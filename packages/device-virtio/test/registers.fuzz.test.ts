import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MemoryBlockBackend } from "../src/backends/block.js";
import { VirtioBlk } from "../src/devices/blk.js";
import { VirtioRng } from "../src/devices/rng.js";
import { legacyBarHandler } from "../src/transport/legacy.js";
import { modernBarHandler, ModernLayout } from "../src/transport/modern.js";
import { C, setupTransport } from "./harness.js";
import { capabilities, pciMachine } from "./pci-machine.js";

/** Register values a guest may write, biased to bit 31 set (the sign bit of a JS 32-bit operation). */
const value = fc.oneof(
  fc.constantFrom(0x8000_0000, 0xffff_ffff, 0x8000_0001, 0xffff_0000, 0x7fff_ffff, 0, 1, 2, 3),
  fc.integer({ min: 0x8000_0000, max: 0xffff_ffff }),
  fc.integer({ min: 0, max: 0xffff_ffff }),
  fc.integer({ min: -0x8000_0000, max: -1 }), // a handler may be given the signed form of the same bits
);
const size = fc.constantFrom(1 as const, 2 as const, 4 as const);
const access = (offsets: fc.Arbitrary<number>) => fc.record({ write: fc.boolean(), offset: offsets, size, value });
const inRange = (v: number, s: 1 | 2 | 4) => Number.isInteger(v) && v >= 0 && v < 2 ** (8 * s);

/**
 * Random accesses to every register file of the transport: whatever the guest writes, nothing throws, every read
 * is an unsigned number of the access width, feature selects naming no word read 0 and accept no features, and a
 * reset brings the device back.
 */
describe("register files under random accesses (property)", () => {
  const modernOffsets = fc.oneof(
    fc.integer({ min: 0, max: 0x40 }),
    fc.constantFrom(C.DF_SELECT, C.DF, C.GF_SELECT, C.GF, C.Q_DESC, C.Q_DESC + 4, C.Q_DRIVER, C.Q_DEVICE + 4),
    fc.constantFrom(ModernLayout.ISR, ModernLayout.DEVICE, ModernLayout.DEVICE + 8, ModernLayout.NOTIFY),
    fc.integer({ min: 0, max: ModernLayout.BAR_SIZE - 4 }),
  );

  it("modern BAR (common cfg, ISR, device cfg, notify)", () => {
    fc.assert(
      fc.property(fc.array(access(modernOffsets), { maxLength: 40 }), (ops) => {
        const t = setupTransport(new VirtioBlk(new MemoryBlockBackend(new Uint8Array(4096))));
        const bar = modernBarHandler(t.transport);
        for (const op of ops) {
          if (op.write) expect(() => bar.write(op.offset, op.size, op.value)).not.toThrow();
          else expect(inRange(bar.read(op.offset, op.size), op.size)).toBe(true);
        }
        for (const [select, word] of [[C.DF_SELECT, C.DF], [C.GF_SELECT, C.GF]] as const) {
          const s = bar.read(select, 4);
          if (s > 1) expect(bar.read(word, 4)).toBe(0);
        }
        expect(t.driver.init()).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("feature words: a select with bit 31 set or beyond word 1 reads 0 and a driver_feature write there is ignored", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 0xffff_ffff }), value, (select, v) => {
        const t = setupTransport(new VirtioRng());
        const before = t.transport.driverFeatures;
        t.driver.w(C.DF_SELECT, 4, select);
        t.driver.w(C.GF_SELECT, 4, select);
        t.driver.w(C.GF, 4, v);
        expect(t.driver.r(C.DF_SELECT, 4)).toBe(select);
        expect(t.driver.r(C.DF, 4)).toBe(0);
        expect(t.driver.r(C.GF, 4)).toBe(0);
        expect(t.transport.driverFeatures).toBe(before);
      }),
      { numRuns: 300 },
    );
  });

  const legacyOffsets = fc.oneof(fc.constantFrom(0, 4, 8, 0xc, 0xe, 0x10, 0x12, 0x13, 0x14, 0x16, 0x18), fc.integer({ min: 0, max: 0xff }));

  it("legacy I/O BAR (header, MSI-X vectors, ISR, device cfg)", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.array(access(legacyOffsets), { maxLength: 40 }), (msix, ops) => {
        const t = setupTransport(new VirtioBlk(new MemoryBlockBackend(new Uint8Array(4096))));
        t.sink.msixOn = msix;
        const bar = legacyBarHandler(t.transport);
        for (const op of ops) {
          if (op.write) expect(() => bar.write(op.offset, op.size, op.value)).not.toThrow();
          else expect(inRange(bar.read(op.offset, op.size), op.size)).toBe(true);
        }
        expect(t.driver.init()).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("through the PCI bus: BAR accesses and the VIRTIO_PCI_CAP_PCI_CFG window", () => {
    const pciCfgOf = (m: ReturnType<typeof pciMachine>) =>
      capabilities(m.cfg).filter(([, id]) => id === 9).map(([at]) => at).find((at) => m.cfg(at + 3, 1) === 5)!;
    const pciCfg = pciCfgOf(pciMachine(new VirtioRng(), "transitional"));
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ kind: fc.constant("cap" as const), op: access(fc.integer({ min: pciCfg, max: pciCfg + 19 })) }),
            fc.record({ kind: fc.constant("bar1" as const), op: access(modernOffsets) }),
            fc.record({ kind: fc.constant("bar0" as const), op: access(legacyOffsets) }),
          ),
          { maxLength: 30 },
        ),
        (ops) => {
          const m = pciMachine(new VirtioRng(), "transitional");
          for (const { kind, op } of ops) {
            const offset = kind === "cap" ? op.offset : op.offset + (kind === "bar1" ? m.bar(1)! : m.bar(0)!);
            if (offset % op.size) continue; // the bus drops misaligned accesses before they reach the device
            const space = kind === "cap" ? undefined : kind === "bar1" ? m.mmio : m.pio;
            if (op.write) {
              expect(() => (space ? space.write(offset, op.size, op.value >>> 0) : m.cfgw(offset, op.size, op.value >>> 0))).not.toThrow();
            } else {
              const v = space ? space.read(offset, op.size) : m.cfg(offset, op.size);
              expect(inRange(v, op.size)).toBe(true);
            }
          }
          expect(m.bar(1)).toBeDefined();
        },
      ),
      { numRuns: 300 },
    );
  });
});
