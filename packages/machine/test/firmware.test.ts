import { GuestMemory } from "@vmm/core";
import { describe, expect, it } from "vitest";
import {
  Layout,
  buildAcpiTables,
  buildMadt,
  buildMcfg,
  buildMpConfigTable,
  buildMpFloatingPointer,
  byteSum,
  writeFirmwareTables,
  type PlatformDescription,
} from "./internals.js";

const platform: PlatformDescription = {
  apicIds: [0, 1],
  lapicAddress: 0xfee00000,
  ioapic: { id: 2, address: 0xfec00000, gsiBase: 0, pins: 24 },
  isaIrqs: [0, 1, 3, 4],
  pciIntx: [
    { bus: 0, device: 1, pin: 1, gsi: 17 },
    { bus: 0, device: 2, pin: 2, gsi: 19 },
  ],
  ecam: { base: 0xe0000000, segment: 0, startBus: 0, endBus: 255 },
};

const text = (b: Uint8Array, at: number, n: number) => String.fromCharCode(...b.subarray(at, at + n));
const u32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at, true);
const u16 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint16(at, true);

describe("MP table", () => {
  it("has a valid floating pointer and a checksummed configuration table", () => {
    const fp = buildMpFloatingPointer(0xf0100);
    expect(text(fp, 0, 4)).toBe("_MP_");
    expect(fp.length).toBe(16);
    expect(byteSum(fp)).toBe(0);
    expect(u32(fp, 4)).toBe(0xf0100);
    const t = buildMpConfigTable(platform);
    expect(text(t, 0, 4)).toBe("PCMP");
    expect(u16(t, 4)).toBe(t.length);
    expect(byteSum(t)).toBe(0);
    expect(u32(t, 36)).toBe(0xfee00000);
  });

  it("lists processors, ISA and PCI buses, the IOAPIC and interrupt sources", () => {
    const t = buildMpConfigTable(platform);
    const entries: number[][] = [];
    for (let at = 44; at < t.length; at += t[at] === 0 ? 20 : 8) entries.push([...t.subarray(at, at + (t[at] === 0 ? 20 : 8))]);
    expect(entries.length).toBe(u16(t, 34));
    const cpus = entries.filter((e) => e[0] === 0);
    expect(cpus.map((e) => [e[1], e[3]])).toEqual([[0, 3], [1, 1]]); // BSP flag only on the first
    expect(entries.filter((e) => e[0] === 1).map((e) => String.fromCharCode(...e.slice(2, 8)).trim())).toEqual(["PCI", "ISA"]);
    expect(entries.filter((e) => e[0] === 2)).toEqual([[2, 2, 0x11, 1, 0x00, 0x00, 0xc0, 0xfe]]);
    const ints = entries.filter((e) => e[0] === 3);
    expect(ints.filter((e) => e[4] === 1).map((e) => [e[5], e[7]])).toEqual([[0, 0], [1, 1], [3, 3], [4, 4]]);
    // PCI: source IRQ = device << 2 | (pin - 1), level/active-low flags, to IOAPIC pin = GSI
    expect(ints.filter((e) => e[4] === 0).map((e) => [e[2], e[5], e[7]])).toEqual([[0x0f, 1 << 2, 17], [0x0f, (2 << 2) | 1, 19]]);
    expect(entries.filter((e) => e[0] === 4).length).toBe(2);
  });

  it("describes the ACPI SCI's ISA IRQ as level, active high, like the MADT's override (other ISA IRQs conform)", () => {
    const withSci: PlatformDescription = { ...platform, acpiPm: { eventBlock: 0x600, controlBlock: 0x604, sciIrq: 3, s5SleepType: 7 } };
    const t = buildMpConfigTable(withSci);
    const isa: number[][] = [];
    for (let at = 44; at < t.length; at += t[at] === 0 ? 20 : 8) if (t[at] === 3 && t[at + 4] === 1) isa.push([t[at + 5]!, u16(t, at + 2)]);
    expect(isa).toEqual([[0, 0], [1, 0], [3, 0x0d], [4, 0]]);
    expect(byteSum(t)).toBe(0);
  });
});

describe("ACPI tables", () => {
  it("lays out RSDP, RSDT, XSDT, FADT, DSDT, MADT and MCFG with correct checksums and links", () => {
    const tables = buildAcpiTables(platform, 0xf0000);
    const bySig = new Map(tables.map((t) => [text(t.bytes, 0, 4), t]));
    const rsdp = tables[0]!;
    expect(rsdp.address).toBe(0xf0000);
    expect(text(rsdp.bytes, 0, 8)).toBe("RSD PTR ");
    expect(byteSum(rsdp.bytes, 0, 20)).toBe(0);
    expect(byteSum(rsdp.bytes)).toBe(0);
    expect(rsdp.bytes[15]).toBe(2);
    for (const [sig, t] of bySig) {
      if (sig === "RSD ") continue;
      expect(u32(t.bytes, 4), sig).toBe(t.bytes.length);
      expect(byteSum(t.bytes), sig).toBe(0);
      expect(t.address % 16).toBe(0);
    }
    expect(u32(rsdp.bytes, 16)).toBe(bySig.get("RSDT")!.address);
    expect(Number(new DataView(rsdp.bytes.buffer).getBigUint64(24, true))).toBe(bySig.get("XSDT")!.address);
    const rsdt = bySig.get("RSDT")!.bytes;
    const pointed = [u32(rsdt, 36), u32(rsdt, 40), u32(rsdt, 44)];
    expect(pointed).toEqual(["FACP", "APIC", "MCFG"].map((s) => bySig.get(s)!.address));
    const fadt = bySig.get("FACP")!.bytes;
    expect(fadt.length).toBe(276);
    expect(u32(fadt, 40)).toBe(bySig.get("DSDT")!.address);
    expect(Number(new DataView(fadt.buffer).getBigUint64(140, true))).toBe(bySig.get("DSDT")!.address);
    // No PM timer unless the platform has one.
    expect(u32(fadt, 76)).toBe(0);
    expect(fadt.subarray(208, 220).every((b) => b === 0)).toBe(true);
  });

  it("points the FADT's PM_TMR_BLK and X_PM_TMR_BLK (system I/O, 32 bits, dword access) at the PM timer", () => {
    const fadt = buildAcpiTables({ ...platform, pmTimerPort: 0x608 }, 0xf0000).find((t) => text(t.bytes, 0, 4) === "FACP")!.bytes;
    expect(byteSum(fadt)).toBe(0);
    expect(u32(fadt, 76)).toBe(0x608);
    expect(fadt[91]).toBe(4); // PM_TMR_LEN
    expect(u32(fadt, 112) & (1 << 8)).toBe(0); // TMR_VAL_EXT clear: a 24-bit timer
    expect([...fadt.subarray(208, 212)]).toEqual([1, 32, 0, 3]);
    expect(Number(new DataView(fadt.buffer, fadt.byteOffset).getBigUint64(212, true))).toBe(0x608);
  });

  it("describes the ECAM window in MCFG and every CPU in the MADT", () => {
    const mcfg = buildMcfg(platform.ecam);
    expect(mcfg.length).toBe(60);
    expect(Number(new DataView(mcfg.buffer).getBigUint64(44, true))).toBe(0xe0000000);
    expect([mcfg[54], mcfg[55]]).toEqual([0, 255]);
    const madt = buildMadt(platform);
    const lapics: number[] = [];
    for (let at = 44; at < madt.length; at += madt[at + 1]!) if (madt[at] === 0) lapics.push(madt[at + 3]!);
    expect(lapics).toEqual([0, 1]);
  });

  it("are placed where guests scan: EBDA pointer, MP pointer in the EBDA, RSDP in the BIOS area", () => {
    const memory = new GuestMemory([{ gpa: 0, bytes: new Uint8Array(2 * 1024 * 1024) }]);
    const placed = writeFirmwareTables(memory, platform);
    expect(memory.readU16(0x40e) << 4).toBe(Layout.ebda);
    expect(text(memory.view(Layout.ebda, 4), 0, 4)).toBe("_MP_");
    expect(memory.readU32(Layout.ebda + 4)).toBe(placed.mpConfig);
    expect(text(memory.view(placed.rsdp, 8), 0, 8)).toBe("RSD PTR ");
    expect(placed.rsdp).toBeGreaterThanOrEqual(0xe0000);
    expect(text(memory.view(placed.mpConfig, 4), 0, 4)).toBe("PCMP");
  });
});
