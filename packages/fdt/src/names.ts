import { FdtError } from "./format.js";
import type { FdtNode } from "./tree.js";

// Name rules (spec 2.2.1, 2.2.4): node names are 1-31 characters of [0-9a-zA-Z,._+-] with an optional
// "@unit-address"; property names are 1-31 characters of [0-9a-zA-Z,._+?#-]. Names are unique among siblings and
// a node's properties come before its children (spec 5.4.2), which the tree shape already guarantees.

const NODE_NAME = /^[0-9a-zA-Z,._+-]{1,31}(@[0-9a-zA-Z,._+-]+)?$/;
const PROPERTY_NAME = /^[0-9a-zA-Z,._+?#-]{1,31}$/;

export function checkNodeName(name: string, path: string): void {
  if (!NODE_NAME.test(name)) throw new FdtError(`${path}: "${name}" is not a valid node name`);
}

export function checkPropertyName(name: string, path: string): void {
  if (!PROPERTY_NAME.test(name)) throw new FdtError(`${path}: "${name}" is not a valid property name`);
}

/** Checks names and sibling uniqueness of `node` (not its children). */
export function checkNode(node: FdtNode, path: string): void {
  const props = new Set<string>();
  for (const p of node.properties) {
    checkPropertyName(p.name, path);
    if (props.has(p.name)) throw new FdtError(`${path}: property "${p.name}" appears twice`);
    props.add(p.name);
  }
  const children = new Set<string>();
  for (const c of node.children) {
    checkNodeName(c.name, path);
    if (children.has(c.name)) throw new FdtError(`${path}: node "${c.name}" appears twice`);
    children.add(c.name);
  }
}
