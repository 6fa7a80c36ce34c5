import { FDT_MAGIC, FDT_VERSION, FdtError, FdtToken, HEADER_SIZE, HEADER_SIZE_V16, Header } from "./format.js";
import { checkNodeName, checkPropertyName } from "./names.js";
import type { Devicetree, FdtNode, FdtProperty, MemoryReservation } from "./tree.js";

// Reads a DTB of version 16 or 17 (or a later one compatible with 17) back into a tree. The input may come from
// a file: every offset and length is checked against the buffer and its block before it is used, and anything
// malformed throws FdtError naming what and where, never a RangeError.

const utf8 = new TextDecoder("utf-8", { fatal: true });

interface Block {
  readonly start: number;
  readonly end: number;
}

class Cursor {
  constructor(
    private readonly view: DataView,
    private readonly block: Block,
    private readonly what: string,
    public at: number,
  ) {}

  u32(): number {
    if (this.at + 4 > this.block.end) throw new FdtError(`${this.what} ends inside a 32-bit word`, this.at);
    const v = this.view.getUint32(this.at);
    this.at += 4;
    return v;
  }
  align4(): void {
    this.at = this.block.start + Math.ceil((this.at - this.block.start) / 4) * 4;
    if (this.at > this.block.end) throw new FdtError(`${this.what} ends inside padding`, this.block.end);
  }
}

/** The NUL-terminated string at `at`, which must end inside `block`. */
function cString(bytes: Uint8Array, at: number, block: Block, what: string): { text: string; bytes: number } {
  const nul = bytes.subarray(at, block.end).indexOf(0);
  if (nul < 0) throw new FdtError(`${what} is not NUL-terminated inside its block`, at);
  try {
    return { text: utf8.decode(bytes.subarray(at, at + nul)), bytes: nul + 1 };
  } catch {
    throw new FdtError(`${what} is not UTF-8`, at);
  }
}

function header(bytes: Uint8Array, view: DataView) {
  if (bytes.length < HEADER_SIZE_V16) throw new FdtError(`${bytes.length} bytes is too short for a DTB header`, 0);
  const field = (offset: number) => view.getUint32(offset);
  const magic = field(Header.magic);
  if (magic !== FDT_MAGIC) throw new FdtError(`bad magic 0x${magic.toString(16)} (a DTB starts with 0xd00dfeed)`, 0);
  const version = field(Header.version);
  const lastComp = field(Header.lastCompVersion);
  if (version < 16) throw new FdtError(`DTB version ${version} is older than 16, the oldest this reader takes`, Header.version);
  if (lastComp > FDT_VERSION) throw new FdtError(`DTB is only compatible back to version ${lastComp}; this reader knows ${FDT_VERSION}`, Header.lastCompVersion);
  const headerSize = version >= 17 ? HEADER_SIZE : HEADER_SIZE_V16;
  if (bytes.length < headerSize) throw new FdtError(`${bytes.length} bytes is too short for a version ${version} header`, 0);
  const total = field(Header.totalsize);
  if (total > bytes.length) throw new FdtError(`totalsize ${total} is beyond the ${bytes.length} bytes given`, Header.totalsize);
  if (total < headerSize) throw new FdtError(`totalsize ${total} is smaller than the header`, Header.totalsize);
  const block = (offsetField: number, size: number | undefined, name: string, alignment: number): Block => {
    const start = field(offsetField);
    if (start < headerSize || start > total) throw new FdtError(`${name} offset 0x${start.toString(16)} is outside the DTB (${total} bytes)`, offsetField);
    if (start % alignment !== 0) throw new FdtError(`${name} offset 0x${start.toString(16)} is not ${alignment}-byte aligned`, offsetField);
    const end = size === undefined ? total : start + size;
    if (end > total) throw new FdtError(`${name} (0x${start.toString(16)} + ${size}) runs past totalsize ${total}`, offsetField);
    return { start, end };
  };
  return {
    version,
    total,
    bootCpuId: field(Header.bootCpuidPhys),
    rsvmap: block(Header.offMemRsvmap, undefined, "memory reservation block", 8),
    structure: block(Header.offDtStruct, version >= 17 ? field(Header.sizeDtStruct) : undefined, "structure block", 4),
    strings: block(Header.offDtStrings, field(Header.sizeDtStrings), "strings block", 1),
  };
}

function reservations(view: DataView, block: Block): MemoryReservation[] {
  const out: MemoryReservation[] = [];
  for (let at = block.start; ; at += 16) {
    if (at + 16 > block.end) throw new FdtError("memory reservation block has no terminating entry", at);
    const address = view.getBigUint64(at);
    const size = view.getBigUint64(at + 8);
    if (address === 0n && size === 0n) return out;
    out.push({ address, size });
  }
}

interface OpenNode {
  readonly name: string;
  readonly path: string;
  readonly properties: FdtProperty[];
  readonly children: FdtNode[];
  readonly propertyNames: Set<string>;
  readonly childNames: Set<string>;
}

function structure(bytes: Uint8Array, view: DataView, block: Block, strings: Block): FdtNode {
  const cursor = new Cursor(view, block, "structure block", block.start);
  const stack: OpenNode[] = [];
  let root: FdtNode | undefined;
  for (;;) {
    const at = cursor.at;
    const token = cursor.u32();
    switch (token) {
      case FdtToken.NOP:
        break;
      case FdtToken.BEGIN_NODE: {
        const { text: name, bytes: stored } = cString(bytes, cursor.at, block, "node name");
        cursor.at += stored;
        cursor.align4();
        const parent = stack[stack.length - 1];
        if (!parent) {
          if (root) throw new FdtError("a second root node", at);
          if (name !== "") throw new FdtError(`the root node is named "${name}" (it must be empty)`, at);
        } else {
          checkNodeName(name, parent.path);
          if (parent.childNames.has(name)) throw new FdtError(`${parent.path}: node "${name}" appears twice`, at);
          parent.childNames.add(name);
        }
        const path = !parent ? "/" : parent.path === "/" ? `/${name}` : `${parent.path}/${name}`;
        stack.push({ name, path, properties: [], children: [], propertyNames: new Set(), childNames: new Set() });
        break;
      }
      case FdtToken.PROP: {
        const node = stack[stack.length - 1];
        if (!node) throw new FdtError("a property outside any node", at);
        const length = cursor.u32();
        const nameOffset = cursor.u32();
        if (length > block.end - cursor.at) throw new FdtError(`property value of ${length} bytes runs past the structure block`, at);
        if (nameOffset >= strings.end - strings.start) throw new FdtError(`property name offset ${nameOffset} is outside the strings block`, at);
        const name = cString(bytes, strings.start + nameOffset, strings, "property name").text;
        checkPropertyName(name, node.path);
        if (node.childNames.size > 0) throw new FdtError(`${node.path}: property "${name}" after a child node`, at);
        if (node.propertyNames.has(name)) throw new FdtError(`${node.path}: property "${name}" appears twice`, at);
        node.propertyNames.add(name);
        node.properties.push({ name, value: bytes.slice(cursor.at, cursor.at + length) });
        cursor.at += length;
        cursor.align4();
        break;
      }
      case FdtToken.END_NODE: {
        const node = stack.pop();
        if (!node) throw new FdtError("END_NODE without a matching BEGIN_NODE", at);
        const done: FdtNode = { name: node.name, properties: node.properties, children: node.children };
        const parent = stack[stack.length - 1];
        if (parent) parent.children.push(done);
        else root = done;
        break;
      }
      case FdtToken.END:
        if (stack.length > 0) throw new FdtError(`END inside ${stack[stack.length - 1]!.path}`, at);
        if (!root) throw new FdtError("END before any root node", at);
        return root;
      default:
        throw new FdtError(`unknown structure token 0x${token.toString(16)}`, at);
    }
  }
}

/** Parses a DTB (version 16 or 17). Throws FdtError for anything malformed. */
export function readDtb(bytes: Uint8Array): Devicetree {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = header(bytes, view);
  return {
    reservations: reservations(view, h.rsvmap),
    root: structure(bytes, view, h.structure, h.strings),
    bootCpuId: h.bootCpuId,
  };
}
