// The capability chain behind VFIO's info structures (region info, IOMMU info, device info): each capability
// starts with vfio_info_cap_header, whose `next` is an offset from the start of the info structure (0 ends the
// chain). The chain comes from the kernel or a vfio-user server, so every offset is checked before it is read.
import { VfioDecodeError } from "./errors.js";
import type { CStruct, StructFields, StructValue } from "./struct.js";
import { VfioInfoCapHeader } from "./structs.js";

export interface VfioCapabilityEntry {
  readonly id: number;
  readonly version: number;
  /** From the start of the info structure. */
  readonly offset: number;
}

/**
 * The capabilities of `info` (the structure's bytes, as far as its argsz reaches) from `first` (its cap_offset) on.
 * `fixedSize` is the structure's own size: a capability inside it, outside the bytes, or a chain that comes back
 * to an offset it visited is refused with a VfioDecodeError naming `what`.
 */
export function walkCapabilityChain(info: Uint8Array, first: number, fixedSize: number, what: string): VfioCapabilityEntry[] {
  const entries: VfioCapabilityEntry[] = [];
  const visited = new Set<number>();
  for (let offset = first; offset !== 0; ) {
    if (offset < fixedSize) {
      throw new VfioDecodeError(`${what}: a capability at offset ${offset} would overlap the ${fixedSize}-byte structure`);
    }
    if (offset + VfioInfoCapHeader.size > info.length) {
      throw new VfioDecodeError(`${what}: a capability at offset ${offset} lies outside the ${info.length} bytes of the reply`);
    }
    if (visited.has(offset)) throw new VfioDecodeError(`${what}: the capability chain loops back to offset ${offset}`);
    visited.add(offset);
    const header = VfioInfoCapHeader.decode(info, offset);
    entries.push({ id: header.id, version: header.version, offset });
    offset = header.next;
  }
  return entries;
}

/** Decodes one capability's fixed part, refusing one whose structure runs past the bytes. */
export function decodeCapability<F extends StructFields>(info: Uint8Array, entry: VfioCapabilityEntry, struct: CStruct<F>, what: string): StructValue<F> {
  if (entry.offset + struct.size > info.length) {
    throw new VfioDecodeError(`${what}: capability ${entry.id} at offset ${entry.offset} needs ${struct.size} bytes, only ${info.length - entry.offset} remain`);
  }
  return struct.decode(info, entry.offset);
}

/**
 * Decodes the `count` elements of a capability's flexible array (sparse mmap areas, IOVA ranges), refusing a count
 * that claims more elements than the bytes after it hold.
 */
export function decodeCapabilityArray<F extends StructFields>(
  info: Uint8Array,
  entry: VfioCapabilityEntry,
  arrayOffset: number,
  count: number,
  element: CStruct<F>,
  what: string,
): StructValue<F>[] {
  const start = entry.offset + arrayOffset;
  const room = Math.floor(Math.max(0, info.length - start) / element.size);
  if (count > room) {
    throw new VfioDecodeError(`${what}: capability ${entry.id} claims ${count} ${element.name} entries, the reply has room for ${room}`);
  }
  return Array.from({ length: count }, (_, i) => element.decode(info, start + i * element.size));
}
