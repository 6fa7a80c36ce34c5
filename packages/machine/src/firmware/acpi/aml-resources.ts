import { buffer, concat, type Aml } from "./aml.js";

/**
 * ACPI resource descriptors (ACPI 6, section 6.4) for _CRS: small IO/IRQ/End items and the large
 * Memory32Fixed and Word/DWord/QWord address space descriptors. `resourceTemplate` wraps them in a Buffer.
 */

/** Address space resource types. */
const ResourceType = { memory: 0, io: 1, busNumber: 2 } as const;
export type AddressSpaceType = keyof typeof ResourceType;

/** General flags: the window's minimum and maximum are fixed, positive decode, produced for children (a bridge). */
const MIN_FIXED = 1 << 2;
const MAX_FIXED = 1 << 3;
const CONSUMER = 1 << 0;

/** Type-specific flags: I/O ranges decode the whole range (ISA and non-ISA). */
const IO_ENTIRE_RANGE = 3;
/** Memory: read-write, and the _MEM caching field (bits 2:1). */
const MEM_READ_WRITE = 1;
export const MemoryCaching = { nonCacheable: 0, cacheable: 1, writeCombining: 2, prefetchable: 3 } as const;
export type MemoryCaching = keyof typeof MemoryCaching;

const LARGE = { memory32Fixed: 0x86, dwordSpace: 0x87, wordSpace: 0x88, qwordSpace: 0x8a } as const;

export interface AddressRange {
  /** First address (or bus number) of the range. */
  readonly min: number | bigint;
  /** Last address, inclusive. */
  readonly max: number | bigint;
}

export interface AddressSpaceOptions extends AddressRange {
  readonly type: AddressSpaceType;
  /** Memory caching attribute (memory only; default non-cacheable). */
  readonly caching?: MemoryCaching;
  /** A device consuming the range rather than a bridge producing it for children (default: producer). */
  readonly consumer?: boolean;
}

function le(value: bigint, bytes: number): number[] {
  return Array.from({ length: bytes }, (_, i) => Number((value >> BigInt(8 * i)) & 0xffn));
}

function checkRange(r: AddressRange, bits: number, what: string): { min: bigint; max: bigint } {
  const min = BigInt(r.min);
  const max = BigInt(r.max);
  const top = (1n << BigInt(bits)) - 1n;
  if (min < 0n || max < min || max > top) throw new RangeError(`ACPI: ${what} range 0x${min.toString(16)}-0x${max.toString(16)} is not a ${bits}-bit range`);
  return { min, max };
}

function addressSpace(tag: number, width: 2 | 4 | 8, o: AddressSpaceOptions): Aml {
  const { min, max } = checkRange(o, width * 8, `${o.type} window`);
  const typeFlags = o.type === "io" ? IO_ENTIRE_RANGE : o.type === "memory" ? MEM_READ_WRITE | (MemoryCaching[o.caching ?? "nonCacheable"] << 1) : 0;
  const generalFlags = MIN_FIXED | MAX_FIXED | (o.consumer ? CONSUMER : 0);
  const fields = [0n, min, max, 0n, max - min + 1n]; // granularity, min, max, translation offset, length
  const body = [ResourceType[o.type], generalFlags, typeFlags, ...fields.flatMap((f) => le(f, width))];
  return Uint8Array.of(tag, ...le(BigInt(body.length), 2), ...body);
}

/** WordBusNumber / WordIO / WordMemory: 16-bit address space descriptor. */
export function wordAddressSpace(o: AddressSpaceOptions): Aml {
  return addressSpace(LARGE.wordSpace, 2, o);
}

/** DWordIO / DWordMemory: 32-bit address space descriptor. */
export function dwordAddressSpace(o: AddressSpaceOptions): Aml {
  return addressSpace(LARGE.dwordSpace, 4, o);
}

/** QWordIO / QWordMemory: 64-bit address space descriptor. */
export function qwordAddressSpace(o: AddressSpaceOptions): Aml {
  return addressSpace(LARGE.qwordSpace, 8, o);
}

/** IO(Decode16, base, base, 1, length): a fixed run of 16-bit-decoded I/O ports. */
export function ioPorts(base: number, length: number): Aml {
  if (!Number.isInteger(base) || !Number.isInteger(length) || length < 1 || length > 255 || base < 0 || base + length > 0x10000) {
    throw new RangeError(`ACPI: I/O ports 0x${base.toString(16)}+${length} are not a valid IO descriptor`);
  }
  return Uint8Array.of(0x47, 1, ...le(BigInt(base), 2), ...le(BigInt(base), 2), 1, length);
}

/** IRQNoFlags() { irqs }: ISA IRQs (edge, active high, exclusive). */
export function isaIrqs(irqs: readonly number[]): Aml {
  let mask = 0;
  for (const irq of irqs) {
    if (!Number.isInteger(irq) || irq < 0 || irq > 15) throw new RangeError(`ACPI: ISA IRQ ${irq} is outside 0-15`);
    mask |= 1 << irq;
  }
  return Uint8Array.of(0x22, mask & 0xff, mask >> 8);
}

/** Memory32Fixed(ReadWrite, base, length). */
export function memory32Fixed(base: number, length: number): Aml {
  checkRange({ min: base, max: base + length - 1 }, 32, "Memory32Fixed");
  return Uint8Array.of(LARGE.memory32Fixed, 9, 0, MEM_READ_WRITE, ...le(BigInt(base), 4), ...le(BigInt(length), 4));
}

/** The End Tag, with a zero checksum ("treat the template as checksummed correctly"). */
export function endTag(): Aml {
  return Uint8Array.of(0x79, 0x00);
}

/** ResourceTemplate() { descriptors }: a Buffer holding the descriptors and the End Tag. */
export function resourceTemplate(descriptors: readonly Aml[]): Aml {
  return buffer(concat(...descriptors, endTag()));
}
