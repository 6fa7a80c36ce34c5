import { FDT_LAST_COMPATIBLE_VERSION, FDT_MAGIC, FDT_VERSION, FdtError, FdtToken, HEADER_SIZE, Header } from "./format.js";
import { checkNode } from "./names.js";
import type { Devicetree, FdtNode } from "./tree.js";

// DTB layout written (spec 5.1): header, memory reservation block (8-byte aligned, right after the 40-byte header),
// structure block (4-byte aligned), strings block (property names, each stored once). No free space between blocks.

const utf8 = new TextEncoder();

/** A growable big-endian byte buffer. */
class Sink {
  private bytes = new Uint8Array(1024);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }
  u32(v: number): void {
    this.reserve(4);
    new DataView(this.bytes.buffer).setUint32(this.length, v);
    this.length += 4;
  }
  raw(data: Uint8Array): void {
    this.reserve(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }
  align4(): void {
    const pad = (4 - (this.length % 4)) % 4;
    this.raw(new Uint8Array(pad));
  }
  result(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

/** Property names in first-use order, each stored once. */
class Strings {
  private readonly offsets = new Map<string, number>();
  readonly sink = new Sink();

  offset(name: string): number {
    let at = this.offsets.get(name);
    if (at === undefined) {
      at = this.sink.length;
      this.offsets.set(name, at);
      this.sink.raw(utf8.encode(`${name}\0`));
    }
    return at;
  }
}

function writeStructure(root: FdtNode, structure: Sink, strings: Strings): void {
  if (root.name !== "") throw new FdtError(`the root node's name must be empty (got "${root.name}")`);
  // An explicit stack: trees from files or generators may be deep.
  const stack: { node: FdtNode; path: string; next: number }[] = [];
  const open = (node: FdtNode, path: string) => {
    checkNode(node, path);
    structure.u32(FdtToken.BEGIN_NODE);
    structure.raw(utf8.encode(`${node.name}\0`));
    structure.align4();
    for (const p of node.properties) {
      structure.u32(FdtToken.PROP);
      structure.u32(p.value.length);
      structure.u32(strings.offset(p.name));
      structure.raw(p.value);
      structure.align4();
    }
    stack.push({ node, path, next: 0 });
  };
  open(root, "/");
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const child = top.node.children[top.next++];
    if (child) {
      open(child, top.path === "/" ? `/${child.name}` : `${top.path}/${child.name}`);
    } else {
      structure.u32(FdtToken.END_NODE);
      stack.pop();
    }
  }
  structure.u32(FdtToken.END);
}

/** The tree as a version-17 DTB. Throws FdtError for invalid names, duplicates or out-of-range values. */
export function writeDtb(tree: Devicetree): Uint8Array {
  if (!Number.isInteger(tree.bootCpuId) || tree.bootCpuId < 0 || tree.bootCpuId > 0xffff_ffff) {
    throw new FdtError(`boot CPU id ${tree.bootCpuId} is not a u32`);
  }
  const rsvmap = new Sink();
  for (const r of tree.reservations) {
    if (r.address < 0n || r.size < 0n || r.address >> 64n || r.size >> 64n) throw new FdtError(`memory reservation 0x${r.address.toString(16)}+0x${r.size.toString(16)} is not two u64s`);
    if (r.address === 0n && r.size === 0n) throw new FdtError("memory reservation {0, 0} would end the reservation list");
    for (const v of [r.address, r.size]) {
      rsvmap.u32(Number(v >> 32n));
      rsvmap.u32(Number(v & 0xffff_ffffn));
    }
  }
  for (let i = 0; i < 4; i++) rsvmap.u32(0); // the terminating {0, 0} entry

  const structure = new Sink();
  const strings = new Strings();
  writeStructure(tree.root, structure, strings);

  const offRsvmap = HEADER_SIZE; // 40: already 8-byte aligned
  const offStruct = offRsvmap + rsvmap.length; // a multiple of 8
  const offStrings = offStruct + structure.length;
  const total = offStrings + strings.sink.length;
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  const header: [number, number][] = [
    [Header.magic, FDT_MAGIC],
    [Header.totalsize, total],
    [Header.offDtStruct, offStruct],
    [Header.offDtStrings, offStrings],
    [Header.offMemRsvmap, offRsvmap],
    [Header.version, FDT_VERSION],
    [Header.lastCompVersion, FDT_LAST_COMPATIBLE_VERSION],
    [Header.bootCpuidPhys, tree.bootCpuId],
    [Header.sizeDtStrings, strings.sink.length],
    [Header.sizeDtStruct, structure.length],
  ];
  for (const [offset, value] of header) view.setUint32(offset, value);
  out.set(rsvmap.result(), offRsvmap);
  out.set(structure.result(), offStruct);
  out.set(strings.sink.result(), offStrings);
  return out;
}
