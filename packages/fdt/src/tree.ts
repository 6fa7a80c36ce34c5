import { FdtError } from "./format.js";

// The tree a DTB encodes, as plain data: what the writer takes and the reader returns.

export interface FdtProperty {
  readonly name: string;
  /** The value's bytes as stored (big-endian cells, NUL-terminated strings, ...); empty for a boolean property. */
  readonly value: Uint8Array;
}

export interface FdtNode {
  /** `node-name@unit-address`; the root's name is "". */
  readonly name: string;
  readonly properties: readonly FdtProperty[];
  readonly children: readonly FdtNode[];
}

/** One memory reservation block entry (spec 5.3). */
export interface MemoryReservation {
  readonly address: bigint;
  readonly size: bigint;
}

export interface Devicetree {
  readonly root: FdtNode;
  readonly reservations: readonly MemoryReservation[];
  /** `boot_cpuid_phys`: the `reg` of the boot CPU's node. */
  readonly bootCpuId: number;
}

/** The property named `name`, or undefined. */
export function getProperty(node: FdtNode, name: string): FdtProperty | undefined {
  return node.properties.find((p) => p.name === name);
}

/**
 * The node at an absolute path ("/", "/cpus/cpu@0"). A component without a unit address matches the one child whose
 * name before '@' equals it (spec 2.2.3); an ambiguous component throws.
 */
export function findNode(root: FdtNode, path: string): FdtNode | undefined {
  if (!path.startsWith("/")) throw new FdtError(`path "${path}" is not absolute`);
  let node: FdtNode | undefined = root;
  for (const component of path.split("/").filter((c) => c !== "")) {
    const exact: FdtNode | undefined = node.children.find((c) => c.name === component);
    if (exact) {
      node = exact;
      continue;
    }
    if (component.includes("@")) return undefined;
    const byName: FdtNode[] = node.children.filter((c) => c.name.split("@")[0] === component);
    if (byName.length > 1) throw new FdtError(`path "${path}": "${component}" names ${byName.length} nodes; add the unit address`);
    node = byName[0];
    if (!node) return undefined;
  }
  return node;
}

/** Every node depth-first (parents before children) with its path and parent. */
export function* walkNodes(root: FdtNode): Generator<{ node: FdtNode; path: string; parent?: FdtNode }> {
  const stack: { node: FdtNode; path: string; parent?: FdtNode }[] = [{ node: root, path: "/" }];
  while (stack.length > 0) {
    const entry = stack.pop()!;
    yield entry;
    const prefix = entry.path === "/" ? "/" : `${entry.path}/`;
    for (let i = entry.node.children.length - 1; i >= 0; i--) {
      const child = entry.node.children[i]!;
      stack.push({ node: child, path: prefix + child.name, parent: entry.node });
    }
  }
}

/** Two trees are equal when names, property bytes and the order of both match. */
export function nodesEqual(a: FdtNode, b: FdtNode): boolean {
  if (a.name !== b.name || a.properties.length !== b.properties.length || a.children.length !== b.children.length) return false;
  for (let i = 0; i < a.properties.length; i++) {
    const pa = a.properties[i]!;
    const pb = b.properties[i]!;
    if (pa.name !== pb.name || pa.value.length !== pb.value.length || pa.value.some((v, j) => v !== pb.value[j])) return false;
  }
  return a.children.every((c, i) => nodesEqual(c, b.children[i]!));
}
