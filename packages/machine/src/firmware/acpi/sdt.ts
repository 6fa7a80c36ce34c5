import { TableWriter, fixChecksum } from "../bytes.js";

export const OEM_ID = "VMMTS ";
export const OEM_TABLE_ID = "VMMTSX86";
export const SDT_HEADER_SIZE = 36;

/** Starts a System Description Table: the 36-byte header; finishSdt fills in length and checksum. */
export function beginSdt(signature: string, revision: number): TableWriter {
  return new TableWriter()
    .text(signature, 4)
    .u32(0)
    .u8(revision)
    .u8(0)
    .text(OEM_ID, 6)
    .text(OEM_TABLE_ID, 8)
    .u32(1)
    .text("VMMT", 4)
    .u32(1);
}

export function finishSdt(w: TableWriter): Uint8Array {
  w.patchU32(4, w.length);
  const table = w.finish();
  fixChecksum(table, 9);
  return table;
}
