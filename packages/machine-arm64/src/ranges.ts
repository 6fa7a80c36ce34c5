// Guest-physical ranges, named, and how refusals print them: "[base, end)" as 0xBASE-0xEND.

export interface AddressRange {
  readonly base: number;
  readonly size: number;
}

export interface NamedRange extends AddressRange {
  /** How messages name it: "RAM", "the PCI I/O window", ... */
  readonly name: string;
}

export function rangeEnd(r: AddressRange): number {
  return r.base + r.size;
}

export function overlaps(a: AddressRange, b: AddressRange): boolean {
  return a.base < rangeEnd(b) && b.base < rangeEnd(a);
}

export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}

/** "0x80000000-0xc0000000": base and exclusive end. */
export function formatRange(r: AddressRange): string {
  return `${hex(r.base)}-${hex(rangeEnd(r))}`;
}

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}
