import { createPortIoSpace, GuestMemory } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { ACPI_PM_PLATFORM, AcpiFiles, buildAcpiBlobs, buildMemoryMap, FwCfg, FwCfgDma, FwCfgKey, installFwCfg, ResetControl } from "./internals.js";
import type { PlatformDescription } from "../src/firmware/platform.js";
import { firmwarePciMem32 } from "../src/machine.js";

const platform = (ecamBase: number): PlatformDescription => ({
  apicIds: [0],
  lapicAddress: 0xfee0_0000,
  ioapic: { id: 1, address: 0xfec0_0000, gsiBase: 0, pins: 24 },
  isaIrqs: [0, 1, 3, 4],
  pciIntx: [],
  pmTimerPort: 0x608,
  acpiPm: ACPI_PM_PLATFORM,
  ecam: { base: ecamBase, segment: 0, startBus: 0, endBus: 255 },
});

const memory = () => new GuestMemory([{ gpa: 0, bytes: new Uint8Array(0x10_0000) }]);
const be32 = (v: number) => ((v & 0xff) << 24 | (v & 0xff00) << 8 | (v >>> 8) & 0xff00 | v >>> 24) >>> 0;

describe("fw_cfg", () => {
  it("reads the signature, ID (with DMA) and the file directory through the ports", () => {
    const cfg = new FwCfg(memory());
    cfg.addFile("etc/hello", new TextEncoder().encode("hi"));
    const read = (n: number) => Array.from({ length: n }, () => cfg.dataHandler.read(0, 1));
    cfg.selectorHandler.write(0, 2, FwCfgKey.signature);
    expect(String.fromCharCode(...read(4))).toBe("QEMU");
    cfg.selectorHandler.write(0, 2, FwCfgKey.id);
    expect(read(4)).toEqual([3, 0, 0, 0]);
    cfg.selectorHandler.write(0, 2, FwCfgKey.fileDir);
    const dir = Uint8Array.from(read(4 + 64));
    const v = new DataView(dir.buffer);
    expect(v.getUint32(0)).toBe(1);
    expect(v.getUint32(4)).toBe(2);
    expect(v.getUint16(8)).toBe(FwCfgKey.firstFile);
    expect(new TextDecoder().decode(dir.subarray(12, 21))).toBe("etc/hello");
    expect(read(2)).toEqual([0, 0]); // past the end reads 0
  });

  it("DMA: select+read copies the item into guest memory and clears control; writes set the error bit", () => {
    const m = memory();
    const cfg = new FwCfg(m);
    const key = cfg.addFile("etc/blob", Uint8Array.from([1, 2, 3, 4, 5]));
    const desc = 0x1000;
    m.writeU32(desc, be32((key << 16) | FwCfgDma.select | FwCfgDma.read));
    m.writeU32(desc + 4, be32(8));
    m.writeU32(desc + 8, 0);
    m.writeU32(desc + 12, be32(0x2000));
    m.write(0x2000, new Uint8Array(8).fill(0xee));
    cfg.dmaHandler.write(0, 4, 0);
    cfg.dmaHandler.write(4, 4, be32(desc));
    expect(Array.from(m.view(0x2000, 8))).toEqual([1, 2, 3, 4, 5, 0, 0, 0]);
    expect(m.readU32(desc)).toBe(0);
    m.writeU32(desc, be32(FwCfgDma.write));
    cfg.dma(desc);
    expect(be32(m.readU32(desc))).toBe(FwCfgDma.error);
    // The signature reads "QEMU CFG" in port order (QEMU's big-endian register, seen by a little-endian guest).
    const bytes = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => cfg.dmaHandler.read(i, 1));
    expect(String.fromCharCode(...bytes)).toBe("QEMU CFG");
    expect(cfg.dmaHandler.read(0, 4)).toBe(0x554d_4551);
  });

  it("the selector takes word writes only and reads 0; the DMA register ignores narrow writes", () => {
    const m = memory();
    const cfg = new FwCfg(m);
    const data = () => cfg.dataHandler.read(0, 1);
    cfg.selectorHandler.write(0, 2, FwCfgKey.signature);
    expect(data()).toBe(0x51); // "Q"
    cfg.selectorHandler.write(0, 1, FwCfgKey.id);
    expect(data()).toBe(0x45); // still the signature: the byte write was ignored
    expect(cfg.selectorHandler.read(0, 2)).toBe(0);
    cfg.dmaHandler.write(4, 2, 0x1234);
    cfg.dmaHandler.write(4, 1, 0x12);
    expect(cfg.stats.dmaTransfers).toBe(0);
  });
});

describe("ACPI through the table-loader", () => {
  it("a loader that follows the commands gets an RSDP whose XSDT reaches an MCFG at the ECAM base firmware chose", () => {
    const blobs = buildAcpiBlobs(platform(0xb000_0000));
    const files: Record<string, Uint8Array> = { [AcpiFiles.tables]: blobs.tables.slice(), [AcpiFiles.rsdp]: blobs.rsdp.slice() };
    const at: Record<string, number> = {};
    const name = (b: Uint8Array, o: number) => new TextDecoder().decode(b.subarray(o, b.indexOf(0, o)));
    const ram = new Uint8Array(0x20_0000);
    const dv = new DataView(ram.buffer);
    let next = 0x10_0000;
    for (let o = 0; o < blobs.loader.length; o += 128) {
      const c = blobs.loader.subarray(o, o + 128);
      const v = new DataView(c.buffer, c.byteOffset, 128);
      const kind = v.getUint32(0, true);
      if (kind === 1) {
        const f = name(c, 4);
        at[f] = f === AcpiFiles.rsdp ? 0xf0000 : (next = (next + 63) & ~63);
        if (f !== AcpiFiles.rsdp) next += files[f]!.length;
      } else if (kind === 2) {
        const dest = files[name(c, 4)]!;
        const off = v.getUint32(116, true);
        const size = c[120]!;
        const d = new DataView(dest.buffer);
        if (size === 4) d.setUint32(off, d.getUint32(off, true) + at[name(c, 60)]!, true);
        else d.setBigUint64(off, d.getBigUint64(off, true) + BigInt(at[name(c, 60)]!), true);
      } else if (kind === 3) {
        const f = files[name(c, 4)]!;
        const [off, start, len] = [v.getUint32(60, true), v.getUint32(64, true), v.getUint32(68, true)];
        f[off] = 0;
        f[off] = (256 - f.subarray(start, start + len).reduce((s, x) => (s + x) & 0xff, 0)) & 0xff;
      }
    }
    for (const [f, b] of Object.entries(files)) ram.set(b, at[f]!);
    const sum = (a: number, n: number) => ram.subarray(a, a + n).reduce((s, x) => (s + x) & 0xff, 0);
    const rsdp = 0xf0000;
    expect(name(ram, rsdp).startsWith("RSD PTR ")).toBe(true);
    expect(sum(rsdp, 20)).toBe(0);
    expect(sum(rsdp, 36)).toBe(0);
    const xsdt = Number(dv.getBigUint64(rsdp + 24, true));
    expect(String.fromCharCode(...ram.subarray(xsdt, xsdt + 4))).toBe("XSDT");
    const entries = (dv.getUint32(xsdt + 4, true) - 36) / 8;
    const sigs = Array.from({ length: entries }, (_, i) => Number(dv.getBigUint64(xsdt + 36 + 8 * i, true)));
    for (const t of [xsdt, ...sigs]) expect(sum(t, dv.getUint32(t + 4, true))).toBe(0);
    const mcfg = sigs.find((t) => String.fromCharCode(...ram.subarray(t, t + 4)) === "MCFG")!;
    expect(Number(dv.getBigUint64(mcfg + 44, true))).toBe(0xb000_0000);
    const fadt = sigs.find((t) => String.fromCharCode(...ram.subarray(t, t + 4)) === "FACP")!;
    expect(String.fromCharCode(...ram.subarray(dv.getUint32(fadt + 40, true), dv.getUint32(fadt + 40, true) + 4))).toBe("DSDT");
    // FIRMWARE_CTRL: the FACS, 64-byte aligned (only the 32-bit field: it is below 4 GiB)
    const facs = dv.getUint32(fadt + 36, true);
    expect([String.fromCharCode(...ram.subarray(facs, facs + 4)), facs % 64, dv.getBigUint64(fadt + 132, true)]).toEqual(["FACS", 0, 0n]);
  });

  it("leaves MCFG out when firmware disabled ECAM", () => {
    const withMcfg = buildAcpiBlobs(platform(0xe000_0000), true);
    const without = buildAcpiBlobs(platform(0xe000_0000), false);
    const count = (b: Uint8Array) => new TextDecoder("latin1").decode(b).split("MCFG").length - 1;
    expect(count(without.tables)).toBe(count(withMcfg.tables) - 1); // the table's signature (the DSDT may name it too)
    expect(without.loader.length).toBe(withMcfg.loader.length - 3 * 128); // two pointers and a checksum fewer
  });
});

describe("reset control (0xCF9)", () => {
  it("RST_CPU requests a soft, hard (SYS_RST) or full (FULL_RST) reset; CONFIG_ADDRESS dwords pass through", () => {
    const kinds: string[] = [];
    const rc = new ResetControl((k) => kinds.push(k));
    const inner = { last: -1, read: () => 0x8000_0000, write(_o: number, _s: number, v: number) { this.last = v; } };
    const h = rc.overlay(inner);
    h.write(1, 1, 0x02);
    expect(h.read(1, 1)).toBe(0x02);
    h.write(1, 1, 0x04);
    h.write(1, 1, 0x06);
    h.write(1, 1, 0x0e);
    expect(kinds).toEqual(["soft", "hard", "full"]);
    h.write(0, 4, 0x8000_0800);
    expect(inner.last).toBe(0x8000_0800);
    expect(h.read(0, 4)).toBe(0x8000_0000);
  });
});

describe("memory layout under firmware", () => {
  const ECAM = 0xb000_0000;
  const FOUR_GIB = 0x1_0000_0000;
  const records = (file: Uint8Array) => {
    const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
    return Array.from({ length: file.length / 20 }, (_, i) => ({
      addr: Number(v.getBigUint64(i * 20, true)),
      size: Number(v.getBigUint64(i * 20 + 8, true)),
      type: v.getUint32(i * 20 + 16, true),
    }));
  };
  const fwCfgFor = (mib: number) => {
    const map = buildMemoryMap(mib, { firmware: true });
    const { fwCfg } = installFwCfg({ memory: memory(), pio: createPortIoSpace(), cpus: 1, ramBytes: map.ramBytes, e820: map.e820, platform: () => platform(ECAM), ecamEnabled: () => true });
    return { map, fwCfg };
  };

  it("with 4 GiB puts no RAM in [0xB0000000, 4 GiB): 2 GiB low, 2 GiB above 4 GiB, in the memory map, etc/e820, RAM size and CMOS sizes", () => {
    const { map, fwCfg } = fwCfgFor(4096);
    expect(map.ram).toEqual([
      { gpa: 0, size: 0x8000_0000 },
      { gpa: FOUR_GIB, size: 0x8000_0000 },
    ]);
    const e820 = records(fwCfg.file("etc/e820")!);
    expect(e820).toEqual([
      { addr: 0, size: 0x8000_0000, type: 1 },
      { addr: 0xfffb_c000, size: 0x4000, type: 2 }, // KVM's identity map and TSS
      { addr: FOUR_GIB, size: 0x8000_0000, type: 1 },
    ]);
    for (const e of [...e820, ...map.e820].filter((x) => x.type === 1)) {
      expect(e.addr + e.size <= ECAM || e.addr >= FOUR_GIB, `RAM 0x${e.addr.toString(16)}+0x${e.size.toString(16)}`).toBe(true);
    }
    expect(map.e820).toContainEqual({ addr: ECAM, size: 256 * 2 ** 20, type: 2 });
    expect(Number(new DataView(fwCfg.contents(FwCfgKey.ramSize)!.buffer).getBigUint64(0, true))).toBe(4 * 2 ** 30);
    expect(map.extendedBytes + 0x10_0000).toBe(0x8000_0000);
    expect(map.highBytes).toBe(0x8000_0000);
  });

  it("keeps RAM below 0xB0000000 whole below 4 GiB (QEMU's q35 rule) and caps 3 GiB at 2 GiB; direct boots keep the 0xC0000000 hole", () => {
    expect(fwCfgFor(2048).map.ram).toEqual([{ gpa: 0, size: 0x8000_0000 }]);
    expect(fwCfgFor(2815).map.ram).toEqual([{ gpa: 0, size: 2815 * 2 ** 20 }]);
    expect(fwCfgFor(3072).map.ram).toEqual([
      { gpa: 0, size: 0x8000_0000 },
      { gpa: FOUR_GIB, size: 0x4000_0000 },
    ]);
    expect(buildMemoryMap(4096).ram[0]).toEqual({ gpa: 0, size: 0xc000_0000 });
  });

  it("declares the 32-bit PCI window above low RAM and the moved ECAM, up to the IOAPIC", () => {
    expect(firmwarePciMem32(0x8000_0000, { enabled: true, base: ECAM, busCount: 256 })).toEqual({ base: 0xc000_0000, size: 0xfec0_0000 - 0xc000_0000 });
    expect(firmwarePciMem32(0x8000_0000, { enabled: false, base: 0, busCount: 256 })).toEqual({ base: 0x8000_0000, size: 0xfec0_0000 - 0x8000_0000 });
  });
});

describe("bootorder", () => {
  const setup = (paths: string[]) =>
    installFwCfg({ memory: memory(), pio: createPortIoSpace(), cpus: 1, ramBytes: 64 * 2 ** 20, e820: buildMemoryMap(64, { firmware: true }).e820, platform: () => platform(0xb000_0000), ecamEnabled: () => true, bootOrder: () => paths }).fwCfg;

  it("joins the paths with newlines and ends with a NUL, as QEMU writes it; no paths give an empty file", () => {
    const text = new TextDecoder().decode(setup(["/pci@i0cf8/scsi@2/disk@0,0", "/pci@i0cf8/scsi@1/disk@0,0"]).file("bootorder"));
    expect(text).toBe("/pci@i0cf8/scsi@2/disk@0,0\n/pci@i0cf8/scsi@1/disk@0,0\0");
    expect(setup([]).file("bootorder")!.length).toBe(0);
  });
});
