// The public API of @vmm/fdt: an explicit list (documented in README.md).

export { FDT_MAGIC, FDT_VERSION, FDT_LAST_COMPATIBLE_VERSION, FdtToken, FdtError } from "./format.js";
export { getProperty, findNode, walkNodes, nodesEqual, type FdtNode, type FdtProperty, type Devicetree, type MemoryReservation } from "./tree.js";
export {
  encodeCells,
  encodeU64,
  encodeString,
  encodeStringList,
  bigintToCells,
  cellsToBigint,
  decodeCells,
  decodeU32,
  decodeU64,
  decodeString,
  decodeStringList,
} from "./values.js";
export {
  DEFAULT_CELL_WIDTHS,
  childCellWidths,
  regCells,
  rangesCells,
  parseReg,
  parseRanges,
  type CellWidths,
  type RegEntry,
  type RangesEntry,
} from "./addresses.js";
export { FdtBuilder, FdtNodeBuilder } from "./builder.js";
export { writeDtb } from "./write.js";
export { readDtb } from "./read.js";
