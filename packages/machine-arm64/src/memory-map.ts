import { ConfigurationError } from "@vmm/core";
import { ECAM_BUS_SIZE } from "@vmm/pci";
import { gicLayout, gicReservations, type GicLayout, type GicVersion } from "./gic.js";
import { Arm64Layout } from "./layout.js";
import { alignUp, formatRange, hex, overlaps, rangeEnd, type AddressRange, type NamedRange } from "./ranges.js";

// The arm64 memory map: the fixed device windows of layout.ts, RAM where the options put it, and the 64-bit PCI
// window above RAM. Options that make RAM overlap a device window, or run past the guest physical address size,
// are refused in one line naming both ranges.

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
/** The kernel Image goes at a 2 MiB aligned base, and RAM's base is that base. */
export const RAM_BASE_ALIGNMENT = 2 * MIB;
export const MIN_RAM_SIZE = 16 * MIB;

export interface Arm64MemoryMapOptions {
  /** RAM in bytes: a whole number of MiB, at least 16 MiB. */
  readonly ramSize: number;
  /** RAM's guest-physical base (`--mem-base`): 2 MiB aligned; default 2 GiB. */
  readonly ramBase?: number;
  readonly cpus: number;
  /** Default "v3". */
  readonly gic?: GicVersion;
  /** Guest physical address bits (KVM_VM_TYPE_ARM_IPA_SIZE); default 40, KVM's default. */
  readonly ipaBits?: number;
}

export interface PciHostWindows {
  /** ECAM: 1 MiB per bus, buses 0 to busCount-1. */
  readonly ecam: NamedRange & { readonly busCount: number };
  /** I/O space: PCI bus address = CPU address. */
  readonly io: NamedRange;
  /** 32-bit non-prefetchable memory window (bus address = CPU address). */
  readonly mmio32: NamedRange;
  /** 64-bit prefetchable memory window above RAM (bus address = CPU address). */
  readonly mmio64: NamedRange;
}

export interface Arm64MemoryMap {
  readonly ram: NamedRange;
  readonly uart: NamedRange;
  readonly gic: GicLayout;
  readonly pci: PciHostWindows;
  /** The guest physical address size every region stays below. */
  readonly ipaBits: number;
  /** Every region (RAM, devices, PCI windows), by base: what the machine maps and what the checks compare. */
  readonly regions: readonly NamedRange[];
}

function refuse(message: string): never {
  throw new ConfigurationError(message);
}

function checkOptions(o: Arm64MemoryMapOptions, version: GicVersion, ipaBits: number): void {
  const L = Arm64Layout;
  if (!Number.isInteger(o.cpus) || o.cpus < 1 || o.cpus > L.maxCpus) refuse(`the arm64 machine takes 1 to ${L.maxCpus} vCPUs (asked for ${o.cpus})`);
  if (version === "v2" && o.cpus > L.maxCpusGicV2) refuse(`GICv2 addresses at most ${L.maxCpusGicV2} vCPUs (asked for ${o.cpus}); use GICv3`);
  if (!Number.isInteger(ipaBits) || ipaBits < 32 || ipaBits > 52) refuse(`the guest physical address size must be 32 to 52 bits (got ${ipaBits})`);
  if (!Number.isSafeInteger(o.ramSize) || o.ramSize < MIN_RAM_SIZE || o.ramSize % MIB !== 0) {
    refuse(`RAM must be a whole number of MiB, at least ${MIN_RAM_SIZE / MIB} MiB (got ${o.ramSize} bytes)`);
  }
  const base = o.ramBase ?? L.defaultRamBase;
  if (!Number.isSafeInteger(base) || base < 0 || base % RAM_BASE_ALIGNMENT !== 0) refuse(`the RAM base ${hex(base)} must be 2 MiB aligned (the kernel is placed there)`);
}

/** Lays out the machine for `options`; throws ConfigurationError naming both ranges of the first overlap. */
export function buildArm64MemoryMap(options: Arm64MemoryMapOptions): Arm64MemoryMap {
  const L = Arm64Layout;
  const version = options.gic ?? "v3";
  const ipaBits = options.ipaBits ?? L.defaultIpaBits;
  checkOptions(options, version, ipaBits);
  const ram: NamedRange = { name: "RAM", base: options.ramBase ?? L.defaultRamBase, size: options.ramSize };
  const gic = gicLayout(version, options.cpus);
  const pci: PciHostWindows = {
    ecam: { name: "the PCI ECAM window", base: L.ecam.base, size: L.ecam.busCount * ECAM_BUS_SIZE, busCount: L.ecam.busCount },
    io: { name: "the PCI I/O window", ...L.pciIo },
    mmio32: { name: "the PCI MMIO window", ...L.pciMmio32 },
    mmio64: { name: "the 64-bit PCI MMIO window", base: alignUp(Math.max(rangeEnd(ram), 4 * GIB), L.pciMmio64Size), size: L.pciMmio64Size },
  };
  const uart: NamedRange = { name: "the UART", base: L.uart.base, size: L.uart.size };
  const devices: NamedRange[] = [pci.io, uart, ...gicReservations(gic), pci.ecam, pci.mmio32, pci.mmio64];

  const limit = 2 ** ipaBits;
  for (const r of [ram, pci.mmio64]) {
    if (rangeEnd(r) > limit) {
      const placed = r === ram ? "" : ` (placed above RAM ${formatRange(ram)})`;
      refuse(`${r.name} ${formatRange(r)}${placed} ends above the ${ipaBits}-bit guest physical address space (${hex(limit)})`);
    }
  }
  const regions = [ram, ...devices].sort((a, b) => a.base - b.base);
  checkNoOverlaps(regions);
  return { ram, uart, gic, pci, ipaBits, regions };
}

/** Refuses the first pair of overlapping regions, RAM named first when it is one of them. */
export function checkNoOverlaps(regions: readonly NamedRange[]): void {
  const sorted = [...regions].sort((a, b) => a.base - b.base);
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length && sorted[j]!.base < rangeEnd(sorted[i]!); j++) {
      const [a, b] = sorted[j]!.name === "RAM" ? [sorted[j]!, sorted[i]!] : [sorted[i]!, sorted[j]!];
      if (overlaps(a, b)) refuse(`${a.name} ${formatRange(a)} overlaps ${b.name} ${formatRange(b)}`);
    }
  }
}

/** Whether `range` lies wholly inside RAM. */
export function insideRam(map: Arm64MemoryMap, range: AddressRange): boolean {
  return range.base >= map.ram.base && rangeEnd(range) <= rangeEnd(map.ram);
}
