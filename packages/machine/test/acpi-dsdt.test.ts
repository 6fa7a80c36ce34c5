import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryLogger, createMmioSpace, createPortIoSpace } from "@vmm/core";
import { PciFunction } from "@vmm/pci";
import { kvmTestGate } from "@vmm/test-support";
import { afterAll, describe, expect, it } from "vitest";
import { ACPI_PM_PLATFORM, Layout, buildAcpiTables, byteSum, machineDsdtDescription, type PlatformDescription } from "./internals.js";
import { createPciHost } from "../src/services/pci.js";

const platform: PlatformDescription = {
  apicIds: [0, 1],
  lapicAddress: Layout.lapic,
  ioapic: { id: 2, address: Layout.ioapic, gsiBase: 0, pins: 24 },
  isaIrqs: [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  pciIntx: [],
  pmTimerPort: 0x608,
  acpiPm: ACPI_PM_PLATFORM,
  ecam: { base: Layout.ecam.base, segment: 0, startBus: 0, endBus: Layout.ecam.busCount - 1 },
};

const text = (b: Uint8Array, at: number, n: number) => String.fromCharCode(...b.subarray(at, at + n));
const u32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at, true);
const tables = () => new Map(buildAcpiTables(platform, 0xf0000).map((t) => [text(t.bytes, 0, 4), t]));
const dsdtBytes = () => tables().get("DSDT")!.bytes;

/** Just enough of an AML reader to walk the _PRT: PkgLength, integers and packages. */
class AmlReader {
  constructor(
    private readonly b: Uint8Array,
    public at: number,
  ) {}
  pkgLength(): number {
    const lead = this.b[this.at++]!;
    const follow = lead >> 6;
    if (follow === 0) return lead & 0x3f;
    let v = lead & 0x0f;
    for (let i = 0; i < follow; i++) v += this.b[this.at++]! * 2 ** (4 + 8 * i);
    return v;
  }
  integer(): number {
    const op = this.b[this.at++]!;
    const le = (n: number) => {
      let v = 0;
      for (let i = 0; i < n; i++) v += this.b[this.at + i]! * 2 ** (8 * i);
      this.at += n;
      return v;
    };
    const sizes: Record<number, number> = { 0x0a: 1, 0x0b: 2, 0x0c: 4, 0x0e: 8 };
    if (op === 0x00 || op === 0x01) return op;
    if (sizes[op]) return le(sizes[op]);
    throw new Error(`not an integer opcode 0x${op.toString(16)} at ${this.at - 1}`);
  }
  element(): number | unknown[] {
    return this.b[this.at] === 0x12 ? this.package() : this.integer();
  }
  /** A Package; its PkgLength (which counts from its own first byte) must end exactly after the last element. */
  package(): unknown[] {
    const start = this.at;
    if (this.b[this.at++] !== 0x12) throw new Error(`no Package at ${start}`);
    const end = start + 1 + this.pkgLength();
    const count = this.b[this.at++]!;
    const out = Array.from({ length: count }, () => this.element());
    expect(this.at).toBe(end);
    return out;
  }
}

/** The _PRT package of a DSDT as [address, pin, source, gsi] tuples. */
function decodePrt(dsdt: Uint8Array): number[][] {
  const at = Buffer.from(dsdt).indexOf("_PRT");
  expect(at).toBeGreaterThan(36);
  expect(dsdt[at - 1]).toBe(0x08); // NameOp
  return new AmlReader(dsdt, at + 4).package() as number[][];
}

describe("DSDT", () => {
  it("is a checksummed revision 2 table that the FADT points at", () => {
    const t = tables();
    const dsdt = t.get("DSDT")!;
    expect(u32(dsdt.bytes, 4)).toBe(dsdt.bytes.length);
    expect(dsdt.bytes[8]).toBe(2);
    expect(byteSum(dsdt.bytes)).toBe(0);
    expect(dsdt.bytes.length).toBeGreaterThan(1000); // no longer an empty definition block
    expect(u32(t.get("FACP")!.bytes, 40)).toBe(dsdt.address);
    // the definition block is one Scope (\_SB), then \_S5 to the end of the table
    expect(dsdt.bytes[36]).toBe(0x10);
    const r = new AmlReader(dsdt.bytes, 37);
    const s5 = 37 + r.pkgLength();
    expect(text(dsdt.bytes, r.at, 5)).toBe("\\_SB_");
    expect(dsdt.bytes[s5]).toBe(0x08); // NameOp
    expect(text(dsdt.bytes, s5 + 1, 5)).toBe("\\_S5_");
    const s5Package = new AmlReader(dsdt.bytes, s5 + 6);
    expect(s5Package.package()).toEqual([ACPI_PM_PLATFORM.s5SleepType, ACPI_PM_PLATFORM.s5SleepType, 0, 0]);
    expect(s5Package.at).toBe(dsdt.bytes.length);
  });

  it("declares no \\_S5 for a platform without the ACPI fixed hardware", () => {
    const { acpiPm: _, ...reduced } = platform;
    const dsdt = buildAcpiTables(reduced, 0xf0000).find((t) => text(t.bytes, 0, 4) === "DSDT")!.bytes;
    expect(Buffer.from(dsdt).includes("_S5_")).toBe(false);
    expect(37 + new AmlReader(dsdt, 37).pkgLength()).toBe(dsdt.length);
  });

  it("routes INTx in _PRT exactly as the PCI bus does, for every device that has a pin", () => {
    const host = createPciHost({
      pio: createPortIoSpace(),
      mmio: createMmioSpace(),
      interrupts: { line: () => ({ level: false, set: () => {} }), signal: () => {} },
      logger: new MemoryLogger(),
    });
    const slots = [1, 2, 3, 4, 5, 9, 17, 30, 31];
    slots.forEach((slot, i) => {
      const pin = ((i % 4) + 1) as 1 | 2 | 3 | 4;
      host.bus.attach(new PciFunction({ name: `f${slot}`, vendorId: 0x1af4, deviceId: 0x1000 + slot, classCode: 0xff0000, interruptPin: pin }), { device: slot });
    });
    const routes = host.intxRoutes();
    expect(routes.length).toBe(slots.length);
    const prt = decodePrt(dsdtBytes());
    expect(prt.length).toBe(31 * 4);
    for (const row of prt) {
      expect(row.length).toBe(4);
      expect(row[0]! & 0xffff).toBe(0xffff); // any function of the device
      expect(row[2]).toBe(0); // a GSI, not a link device
    }
    const answer = (device: number, pin: number) => prt.find((e) => e[0] === device * 0x10000 + 0xffff && e[1] === pin - 1)?.[3];
    for (const r of routes) expect({ ...r, gsi: answer(r.device, r.pin) }).toEqual(r);
    // and every other slot and pin follows the machine's swizzle over GSIs 16-19
    const d = machineDsdtDescription(platform).pci;
    for (let dev = 1; dev < 32; dev++) for (let pin = 1; pin <= 4; pin++) expect(answer(dev, pin)).toBe(d.intxGsi(dev, pin));
    expect(new Set(prt.map((e) => e[3]))).toEqual(new Set([16, 17, 18, 19]));
  });

  it("takes its windows from the machine layout and the MCFG bus range", () => {
    const d = machineDsdtDescription(platform).pci;
    expect(d.io).toEqual(Layout.pciIo);
    expect(d.mem32).toEqual(Layout.pciMem32);
    expect(d.mem64).toEqual(Layout.pciMem64);
    expect(d.ecam).toEqual(platform.ecam);
    const narrow = { ...platform, ecam: { ...platform.ecam, endBus: 15 } };
    const dsdt = buildAcpiTables(narrow, 0xf0000).find((t) => text(t.bytes, 0, 4) === "DSDT")!.bytes;
    const hex = Buffer.from(dsdt).toString("hex");
    expect(hex).toContain("880d00020c00" + "0000" + "0000" + "0f00" + "0000" + "1000"); // WordBusNumber 0-15
    expect(hex).toContain("860900" + "01" + "000000e0" + "00000001"); // MRES: 16 MiB of ECAM
  });
});

function iaslAvailability(): { ok: true } | { ok: false; reason: string } {
  const r = spawnSync("iasl", ["-v"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return { ok: false, reason: `iasl (Debian package acpica-tools) is not installed: ${r.error?.message ?? r.stderr}` };
  return { ok: true };
}

const iasl = kvmTestGate("@vmm/machine", { what: "ACPI table disassembly (iasl) tests", check: iaslAvailability });

describe.skipIf(!iasl.ok)("ACPI tables under the ACPICA disassembler (iasl -d)", () => {
  const dir = mkdtempSync(join(tmpdir(), "vmm-acpi-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]) => {
    const r = spawnSync("iasl", args, { cwd: dir, encoding: "utf8" });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  };
  const disassemble = (sig: string, bytes: Uint8Array) => {
    writeFileSync(join(dir, `${sig}.dat`), bytes);
    const r = run("-d", `${sig}.dat`);
    expect(r.status, r.output).toBe(0);
    expect(r.output).not.toMatch(/error|warning/i);
    const dsl = readFileSync(join(dir, `${sig}.dsl`), "utf8");
    expect(dsl).not.toMatch(/incorrect checksum|invalid/i);
    return dsl;
  };

  it("disassembles the DSDT without errors: PCI0 with its IDs, windows and routes, MRES, COM1, KBD", () => {
    const dsl = disassemble("DSDT", dsdtBytes());
    const compact = dsl.replace(/\s+/g, " ");
    expect(dsl).toContain("Device (PCI0)");
    expect(dsl).toContain('Name (_HID, EisaId ("PNP0A08")');
    expect(dsl).toContain('Name (_CID, EisaId ("PNP0A03")');
    for (const n of ["_UID", "_SEG", "_BBN"]) expect(dsl).toContain(`Name (${n}, Zero)`);
    const range = (kind: string, min: string, max: string, len: string) =>
      new RegExp(`${kind} \\(ResourceProducer,[^/]*? 0x0+, // Granularity ${min}, // Range Minimum ${max}, // Range Maximum 0x0+, // Translation Offset ${len}, // Length`);
    expect(compact).toMatch(/WordBusNumber \(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0x0000, \/\/ Granularity 0x0000, \/\/ Range Minimum 0x00FF, \/\/ Range Maximum 0x0000, \/\/ Translation Offset 0x0100, \/\/ Length/);
    expect(compact).toMatch(/IO \(Decode16, 0x0CF8, \/\/ Range Minimum 0x0CF8, \/\/ Range Maximum 0x01, \/\/ Alignment 0x08, \/\/ Length/);
    expect(compact).toMatch(range("WordIO", "0x6200", "0xFFFF", "0x9E00"));
    expect(compact).toMatch(range("DWordMemory", "0xC0000000", "0xDFFFFFFF", "0x20000000"));
    expect(compact).toMatch(range("QWordMemory", "0x0000008000000000", "0x000000FFFFFFFFFF", "0x0000008000000000"));
    expect(compact).toContain("Name (_PRT, Package (0x7C)");
    expect(compact).toContain("Package (0x04) { 0x0001FFFF, Zero, Zero, 0x11 }");
    expect(compact).toContain("Package (0x04) { 0x001FFFFF, 0x03, Zero, 0x12 }");
    expect(dsl.match(/Package \(0x04\)/g)?.length).toBe(124 + 1); // the _PRT's entries and \_S5
    expect(compact).toContain("Name (\\_S5, Package (0x04) // _S5_: S5 System State { 0x07, 0x07, Zero, Zero })");
    expect(dsl).toContain('Name (_HID, EisaId ("PNP0C02")');
    expect(compact).toMatch(/Memory32Fixed \(ReadWrite, 0xE0000000, \/\/ Address Base 0x10000000, \/\/ Address Length/);
    expect(dsl).toContain('Name (_HID, EisaId ("PNP0501")');
    expect(compact).toMatch(/IO \(Decode16, 0x03F8, [^)]*0x08, \/\/ Length \) IRQNoFlags \(\) \{4\}/);
    expect(dsl).toContain('Name (_HID, EisaId ("PNP0303")');
    expect(compact).toMatch(/IRQNoFlags \(\) \{1\}/);
  });

  it("recompiles (iasl -oa, no optimisations) to exactly the same AML, without warnings", () => {
    const dsdt = dsdtBytes();
    disassemble("DSDT", dsdt);
    const r = run("-oa", "-p", "recompiled", "DSDT.dsl");
    expect(r.status, r.output).toBe(0);
    expect(r.output).toMatch(/0 Errors, 0 Warnings, 0 Remarks/);
    const recompiled = readFileSync(join(dir, "recompiled.aml"));
    // the header differs only in the compiler ID and checksum: the AML body must be byte-identical
    expect(Buffer.from(recompiled.subarray(36)).equals(Buffer.from(dsdt.subarray(36)))).toBe(true);
  });

  // The RSDP is no SDT and this iasl does not take it as a lone binary; its checksums are unit-tested.
  it("disassembles FACS, FADT, MADT, MCFG, RSDT and XSDT without errors or checksum complaints", () => {
    const sdts = buildAcpiTables(platform, 0xf0000).slice(1);
    expect(sdts.map((t) => text(t.bytes, 0, 4))).toEqual(["FACS", "DSDT", "FACP", "APIC", "MCFG", "RSDT", "XSDT"]);
    for (const t of sdts.filter((x) => text(x.bytes, 0, 4) !== "DSDT")) {
      const sig = text(t.bytes, 0, 4);
      expect(disassemble(sig, t.bytes)).toMatch(new RegExp(`Signature : "${sig}"`));
    }
  });

  it("reads the FADT as ACPICA does: the fixed power button, PM1 blocks, the SCI on IRQ 9, the FACS; the MADT's SCI override", () => {
    const placed = buildAcpiTables(platform, 0xf0000);
    const facs = placed.find((t) => text(t.bytes, 0, 4) === "FACS")!;
    const fadt = disassemble("FACP", placed.find((t) => text(t.bytes, 0, 4) === "FACP")!.bytes).replace(/[ \t]+/g, " ");
    const field = (name: string) => new RegExp(`\\] ${name.replace(/[()]/g, "\\$&")} : ([0-9A-F]+)`).exec(fadt)?.[1];
    expect(field("SCI Interrupt")).toBe("0009");
    expect(field("SMI Command Port")).toBe("00000000");
    expect(field("PM1A Event Block Address")).toBe("00000600");
    expect(field("PM1A Control Block Address")).toBe("00000604");
    expect(field("PM1 Event Block Length")).toBe("04");
    expect(field("PM1 Control Block Length")).toBe("02");
    expect(Number.parseInt(field("FACS Address")!, 16)).toBe(facs.address);
    expect(facs.address % 64).toBe(0);
    expect(fadt).toContain(" Control Method Power Button (V1) : 0\n");
    expect(fadt).toContain(" Control Method Sleep Button (V1) : 1\n");
    expect(fadt).toContain(" Hardware Reduced (V5) : 0\n");
    const madt = disassemble("APIC", placed.find((t) => text(t.bytes, 0, 4) === "APIC")!.bytes).replace(/[ \t]+/g, " ");
    expect(madt).toMatch(/Subtable Type : 02 \[Interrupt Source Override\]\n.*\n.* Bus : 00\n.* Source : 09\n.* Interrupt : 00000009\n.* Flags \(decoded below\) : 000D\n Polarity : 1\n Trigger Mode : 3\n/);
  });

  it("reads a platform without fixed hardware as hardware-reduced, without a FACS", () => {
    const { acpiPm: _, ...reduced } = platform;
    const placed = buildAcpiTables(reduced, 0xf0000);
    expect(placed.map((t) => text(t.bytes, 0, 4))).not.toContain("FACS");
    const fadt = disassemble("FACP", placed.find((t) => text(t.bytes, 0, 4) === "FACP")!.bytes).replace(/[ \t]+/g, " ");
    expect(fadt).toContain(" Hardware Reduced (V5) : 1\n");
    expect(fadt).toMatch(/\] SCI Interrupt : 0000\n/);
  });
});
