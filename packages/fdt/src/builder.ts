import { DEFAULT_CELL_WIDTHS, rangesCells, regCells, type CellWidths, type RangesEntry, type RegEntry } from "./addresses.js";
import { FdtError } from "./format.js";
import type { Devicetree, FdtNode, FdtProperty, MemoryReservation } from "./tree.js";
import { decodeU32, encodeCells, encodeString, encodeStringList, encodeU64 } from "./values.js";

// A small builder over the tree types: properties by value kind, phandles allocated by label (a node may be
// referenced before the node that defines it is built), and reg/ranges encoded with the cell widths in force.

/** Phandles by label: numbered from 1 in order of first mention; each must be defined by exactly one node. */
class Phandles {
  private readonly numbers = new Map<string, number>();
  private readonly definedBy = new Map<string, string>();

  get(label: string): number {
    let n = this.numbers.get(label);
    if (n === undefined) {
      n = this.numbers.size + 1;
      this.numbers.set(label, n);
    }
    return n;
  }
  define(label: string, path: string): number {
    const other = this.definedBy.get(label);
    if (other) throw new FdtError(`phandle "${label}" is defined by both ${other} and ${path}`);
    this.definedBy.set(label, path);
    return this.get(label);
  }
  checkAllDefined(): void {
    const missing = [...this.numbers.keys()].filter((l) => !this.definedBy.has(l));
    if (missing.length > 0) throw new FdtError(`phandle(s) referenced but defined by no node: ${missing.join(", ")}`);
  }
}

export class FdtNodeBuilder {
  private readonly properties: FdtProperty[] = [];
  private readonly children: FdtNodeBuilder[] = [];

  /** @internal use FdtBuilder.root and node() */
  constructor(
    readonly name: string,
    readonly path: string,
    private readonly phandles: Phandles,
    private readonly parent?: FdtNodeBuilder,
  ) {}

  /** Any property from its encoded bytes. */
  bytes(name: string, value: Uint8Array): this {
    if (this.children.length > 0) throw new FdtError(`${this.path}: property "${name}" added after a child node`);
    if (this.properties.some((p) => p.name === name)) throw new FdtError(`${this.path}: property "${name}" set twice`);
    this.properties.push({ name, value: Uint8Array.from(value) });
    return this;
  }
  /** A property without a value (`dma-coherent;`). */
  empty(name: string): this {
    return this.bytes(name, new Uint8Array(0));
  }
  /** One or more u32 cells. */
  u32(name: string, ...cells: number[]): this {
    return this.cells(name, cells);
  }
  cells(name: string, cells: readonly number[]): this {
    return this.bytes(name, encodeCells(cells));
  }
  /** One or more u64 values (two cells each). */
  u64(name: string, ...values: (bigint | number)[]): this {
    return this.bytes(name, encodeU64(values));
  }
  string(name: string, value: string): this {
    return this.bytes(name, encodeString(value));
  }
  strings(name: string, values: readonly string[]): this {
    return this.bytes(name, encodeStringList(values));
  }
  /** Gives this node the phandle allocated for `label` (its `phandle` property). */
  phandle(label: string): this {
    return this.u32("phandle", this.phandles.define(label, this.path));
  }
  /** The phandle number of `label`, for a reference cell; the node that defines it may come later. */
  ref(label: string): number {
    return this.phandles.get(label);
  }
  /** The widths this node's children use: its own #address-cells / #size-cells, else the defaults. */
  childCells(): CellWidths {
    const read = (name: string) => {
      const p = this.properties.find((q) => q.name === name);
      return p ? decodeU32(p.value) : undefined;
    };
    return {
      addressCells: read("#address-cells") ?? DEFAULT_CELL_WIDTHS.addressCells,
      sizeCells: read("#size-cells") ?? DEFAULT_CELL_WIDTHS.sizeCells,
    };
  }
  /** `reg`, encoded with the parent's #address-cells / #size-cells (set them on the parent first). */
  reg(entries: readonly RegEntry[]): this {
    if (!this.parent) throw new FdtError("the root node has no reg");
    return this.cells("reg", regCells(entries, this.parent.childCells()));
  }
  /** `ranges` mapping this node's bus into its parent's; an empty list writes `ranges;` (identity). */
  ranges(entries: readonly RangesEntry[]): this {
    if (!this.parent) throw new FdtError("the root node has no ranges");
    if (entries.length === 0) return this.empty("ranges");
    return this.cells("ranges", rangesCells(entries, this.childCells(), this.parent.childCells()));
  }
  /** Adds a child node and lets `build` fill it; returns this node. */
  node(name: string, build: (node: FdtNodeBuilder) => void = () => {}): this {
    if (this.children.some((c) => c.name === name)) throw new FdtError(`${this.path}: node "${name}" added twice`);
    const child = new FdtNodeBuilder(name, this.path === "/" ? `/${name}` : `${this.path}/${name}`, this.phandles, this);
    this.children.push(child);
    build(child);
    return this;
  }
  /** @internal */
  toNode(): FdtNode {
    return { name: this.name, properties: [...this.properties], children: this.children.map((c) => c.toNode()) };
  }
}

/** Builds a Devicetree: `new FdtBuilder().root((r) => ...).build()`. */
export class FdtBuilder {
  private readonly phandles = new Phandles();
  private readonly rootBuilder = new FdtNodeBuilder("", "/", this.phandles);
  private readonly reserved: MemoryReservation[] = [];

  root(build: (root: FdtNodeBuilder) => void): this {
    build(this.rootBuilder);
    return this;
  }
  /** The phandle number of `label` (see FdtNodeBuilder.ref). */
  ref(label: string): number {
    return this.phandles.get(label);
  }
  /** A memory reservation block entry. */
  reserve(address: bigint | number, size: bigint | number): this {
    this.reserved.push({ address: BigInt(address), size: BigInt(size) });
    return this;
  }
  /** The tree; throws when a referenced phandle has no node. */
  build(options: { bootCpuId?: number } = {}): Devicetree {
    this.phandles.checkAllDefined();
    return { root: this.rootBuilder.toNode(), reservations: [...this.reserved], bootCpuId: options.bootCpuId ?? 0 };
  }
}
