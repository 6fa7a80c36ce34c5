import type { FdtNodeBuilder } from "@vmm/fdt";
import type { AddressRange } from "../ranges.js";

// /memory: the one RAM range.

export function addMemory(root: FdtNodeBuilder, ram: AddressRange): void {
  root.node(`memory@${ram.base.toString(16)}`, (n) => n.string("device_type", "memory").reg([{ address: ram.base, size: ram.size }]));
}
