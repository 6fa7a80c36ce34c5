// The flattened devicetree format, Devicetree Specification v0.4 chapter 5: header fields, block tokens, the
// versions this package writes and reads, and the error every malformed input or invalid tree raises.

/** `magic`: the first big-endian word of every DTB. */
export const FDT_MAGIC = 0xd00dfeed;
/** The version this package writes (and the newest it reads). */
export const FDT_VERSION = 17;
/** The oldest version a version-17 reader understands; written as `last_comp_version`. */
export const FDT_LAST_COMPATIBLE_VERSION = 16;

/** Structure block tokens (spec 5.4.1). */
export const FdtToken = {
  BEGIN_NODE: 0x1,
  END_NODE: 0x2,
  PROP: 0x3,
  NOP: 0x4,
  END: 0x9,
} as const;

/** Byte offsets of the header's big-endian u32 fields (spec 5.2); the v17 header is 40 bytes. */
export const Header = {
  magic: 0,
  totalsize: 4,
  offDtStruct: 8,
  offDtStrings: 12,
  offMemRsvmap: 16,
  version: 20,
  lastCompVersion: 24,
  bootCpuidPhys: 28,
  sizeDtStrings: 32,
  sizeDtStruct: 36,
} as const;
export const HEADER_SIZE = 40;
/** A version-16 header ends before `size_dt_struct`. */
export const HEADER_SIZE_V16 = 36;

/** A malformed DTB (with the byte offset where reading failed) or a tree that cannot be written. */
export class FdtError extends Error {
  constructor(
    message: string,
    readonly offset?: number,
  ) {
    super(offset === undefined ? message : `${message} (at byte 0x${offset.toString(16)})`);
    this.name = "FdtError";
  }
}
