import {
  buildDsdt,
  buildFacs,
  buildFadt,
  buildMadt,
  buildMcfg,
  buildRsdp,
  buildRsdt,
  buildXsdt,
  fadtHardware,
  FadtOffset,
  machineDsdtDescription,
} from "../../firmware/acpi/index.js";
import type { PlatformDescription } from "../../firmware/platform.js";

/** fw_cfg file names of the ACPI tables and the linker script that installs them (QEMU's names). */
export const AcpiFiles = { tables: "etc/acpi/tables", rsdp: "etc/acpi/rsdp", loader: "etc/table-loader" } as const;

const COMMAND_SIZE = 128;
const FILE_NAME = 56;
const Command = { allocate: 1, addPointer: 2, addChecksum: 3 } as const;
/** Where ALLOCATE puts a file: anywhere in RAM below 4 GiB, or the 0xF0000 segment (where guests scan for the RSDP). */
export const LoaderZone = { high: 1, fseg: 2 } as const;

/** The table-loader's commands, each a 128-byte little-endian record. */
export class TableLoader {
  private readonly commands: Uint8Array[] = [];

  allocate(file: string, align: number, zone: number): this {
    const [c, v] = this.command(Command.allocate);
    name(c, 4, file);
    v.setUint32(4 + FILE_NAME, align, true);
    c[8 + FILE_NAME] = zone;
    return this;
  }

  /** Adds the address where `src` was allocated to the `size`-byte little-endian value at `offset` in `dest`. */
  addPointer(dest: string, src: string, offset: number, size: 1 | 2 | 4 | 8): this {
    const [c, v] = this.command(Command.addPointer);
    name(c, 4, dest);
    name(c, 4 + FILE_NAME, src);
    v.setUint32(4 + 2 * FILE_NAME, offset, true);
    c[8 + 2 * FILE_NAME] = size;
    return this;
  }

  /** Makes the bytes `start..start+length` of `file` sum to 0 by adjusting the byte at `offset`. */
  addChecksum(file: string, offset: number, start: number, length: number): this {
    const [c, v] = this.command(Command.addChecksum);
    name(c, 4, file);
    v.setUint32(4 + FILE_NAME, offset, true);
    v.setUint32(8 + FILE_NAME, start, true);
    v.setUint32(12 + FILE_NAME, length, true);
    return this;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.commands.length * COMMAND_SIZE);
    this.commands.forEach((c, i) => out.set(c, i * COMMAND_SIZE));
    return out;
  }

  private command(kind: number): [Uint8Array, DataView] {
    const c = new Uint8Array(COMMAND_SIZE);
    const v = new DataView(c.buffer);
    v.setUint32(0, kind, true);
    this.commands.push(c);
    return [c, v];
  }
}

function name(into: Uint8Array, at: number, file: string): void {
  const b = new TextEncoder().encode(file);
  if (b.length >= FILE_NAME) throw new RangeError(`table-loader file name '${file}' is too long`);
  into.set(b, at);
}

export interface AcpiBlobs {
  readonly tables: Uint8Array;
  readonly rsdp: Uint8Array;
  readonly loader: Uint8Array;
}

const SDT_CHECKSUM = 9;
const SDT_HEADER = 36;
const RSDP_RSDT = 16;
const RSDP_XSDT = 24;

/**
 * The same ACPI tables a direct boot gets (FACS, DSDT, FADT, MADT, MCFG, RSDT, XSDT and the RSDP), laid out as QEMU's
 * fw_cfg files: the tables in one blob whose pointers hold offsets inside it, the RSDP alone, and the commands that
 * let firmware allocate both, add the blob's address to every pointer and fix every checksum. The FACS (only with
 * fixed hardware) opens the blob, which is allocated 64-byte aligned as the FACS must be. An ECAM window that
 * firmware disabled gets no MCFG.
 */
export function buildAcpiBlobs(p: PlatformDescription, ecamEnabled = true): AcpiBlobs {
  const parts: { offset: number; bytes: Uint8Array }[] = [];
  let at = 0;
  const put = (bytes: Uint8Array): number => {
    const offset = at;
    parts.push({ offset, bytes });
    at = (at + bytes.length + 15) & ~15;
    return offset;
  };
  const facs = p.acpiPm ? put(buildFacs()) : undefined;
  const dsdt = put(buildDsdt(machineDsdtDescription(p)));
  const fadt = put(buildFadt(dsdt, fadtHardware(p, facs)));
  const pointed = [fadt, put(buildMadt(p))];
  if (ecamEnabled) pointed.push(put(buildMcfg(p.ecam)));
  const rsdt = put(buildRsdt(pointed));
  const xsdt = put(buildXsdt(pointed));
  const tables = new Uint8Array(at);
  for (const part of parts) tables.set(part.bytes, part.offset);
  const checksummed = [dsdt, fadt, ...pointed.slice(1), rsdt, xsdt]; // the FACS has no checksum
  const rsdp = buildRsdp(rsdt, xsdt);

  const { tables: T, rsdp: R } = AcpiFiles;
  const l = new TableLoader().allocate(R, 16, LoaderZone.fseg).allocate(T, 64, LoaderZone.high);
  if (facs !== undefined) l.addPointer(T, T, fadt + FadtOffset.firmwareCtrl, 4);
  l.addPointer(T, T, fadt + FadtOffset.dsdt, 4).addPointer(T, T, fadt + FadtOffset.xDsdt, 8);
  pointed.forEach((_, i) => l.addPointer(T, T, rsdt + SDT_HEADER + 4 * i, 4).addPointer(T, T, xsdt + SDT_HEADER + 8 * i, 8));
  l.addPointer(R, T, RSDP_RSDT, 4).addPointer(R, T, RSDP_XSDT, 8);
  const view = new DataView(tables.buffer);
  for (const offset of checksummed) l.addChecksum(T, offset + SDT_CHECKSUM, offset, view.getUint32(offset + 4, true));
  l.addChecksum(R, 8, 0, 20).addChecksum(R, 32, 0, 36);
  return { tables, rsdp, loader: l.bytes() };
}
