import { FdtError } from "./format.js";
import { getProperty, type FdtNode } from "./tree.js";
import { bigintToCells, cellsToBigint, decodeCells, decodeU32 } from "./values.js";

// `reg` and `ranges` (spec 2.3.6, 2.3.8): address and size fields whose widths the bus node's #address-cells and
// #size-cells set. Addresses are bigints so a 3-cell PCI address (phys.hi above a 64-bit address) fits too.

/** A bus's address and size widths in cells. */
export interface CellWidths {
  readonly addressCells: number;
  readonly sizeCells: number;
}

/** The spec's defaults when a node has no #address-cells / #size-cells. */
export const DEFAULT_CELL_WIDTHS: CellWidths = { addressCells: 2, sizeCells: 1 };

export interface RegEntry {
  readonly address: bigint | number;
  readonly size: bigint | number;
}

export interface RangesEntry {
  /** Address in the child bus (the node's own #address-cells). */
  readonly child: bigint | number;
  /** Address in the parent bus (the parent's #address-cells). */
  readonly parent: bigint | number;
  /** In the node's own #size-cells. */
  readonly size: bigint | number;
}

/** The widths a node sets for its children (its #address-cells / #size-cells, else the defaults). */
export function childCellWidths(node: FdtNode): CellWidths {
  const cells = (name: string, fallback: number) => {
    const p = getProperty(node, name);
    return p ? decodeU32(p.value) : fallback;
  };
  return {
    addressCells: cells("#address-cells", DEFAULT_CELL_WIDTHS.addressCells),
    sizeCells: cells("#size-cells", DEFAULT_CELL_WIDTHS.sizeCells),
  };
}

/** `reg` cells for `entries` on a bus of the given widths. */
export function regCells(entries: readonly RegEntry[], bus: CellWidths): number[] {
  return entries.flatMap((e) => [...bigintToCells(e.address, bus.addressCells), ...bigintToCells(e.size, bus.sizeCells)]);
}

/** `ranges` cells: child address, parent address, size. */
export function rangesCells(entries: readonly RangesEntry[], child: CellWidths, parent: CellWidths): number[] {
  return entries.flatMap((e) => [
    ...bigintToCells(e.child, child.addressCells),
    ...bigintToCells(e.parent, parent.addressCells),
    ...bigintToCells(e.size, child.sizeCells),
  ]);
}

function groups(value: Uint8Array, widths: readonly number[], what: string): bigint[][] {
  const cells = decodeCells(value);
  const stride = widths.reduce((a, b) => a + b, 0);
  if (stride === 0 || cells.length % stride !== 0) throw new FdtError(`${what}: ${cells.length} cells is not a multiple of ${stride}`);
  const out: bigint[][] = [];
  for (let i = 0; i < cells.length; i += stride) {
    let at = i;
    out.push(widths.map((w) => cellsToBigint(cells.slice(at, (at += w)))));
  }
  return out;
}

/** A `reg` value decoded with the widths of the bus it sits on. */
export function parseReg(value: Uint8Array, bus: CellWidths): { address: bigint; size: bigint }[] {
  return groups(value, [bus.addressCells, bus.sizeCells], "reg").map(([address, size]) => ({ address: address!, size: size! }));
}

/** A `ranges` value decoded: the node's own widths for child addresses and sizes, the parent's for parent addresses. */
export function parseRanges(value: Uint8Array, child: CellWidths, parent: CellWidths): { child: bigint; parent: bigint; size: bigint }[] {
  return groups(value, [child.addressCells, parent.addressCells, child.sizeCells], "ranges").map(([c, p, s]) => ({ child: c!, parent: p!, size: s! }));
}
