import { ConfigurationError } from "@vmm/core";

/** The x86_64 machine's fixed guest-physical layout. RAM sits below the PCI hole and continues above 4 GiB. */
export const Layout = {
  /** Real-mode IVT and BIOS data area; the BDA word at 0x40E holds the EBDA segment. */
  bdaEbdaPointer: 0x40e,
  /** VMM-built GDT for 32/64-bit entry. */
  gdt: 0x500,
  /** boot_params ("zero page") for Linux. */
  bootParams: 0x7000,
  /** VMM-built identity page tables: PML4, PDPT, then four page directories (first 4 GiB, 2 MiB pages). */
  pageTables: 0x9000,
  pageTablesEnd: 0xf000,
  /** Linux command line. */
  cmdline: 0x20000,
  cmdlineMax: 0x10000,
  /** Where kvmtool-style raw binaries are loaded (segment 0x1000). */
  rawLoad: 0x10000,
  /** Extended BIOS data area (MP floating pointer and RSDP live here) up to the VGA hole. */
  ebda: 0x9fc00,
  ebdaEnd: 0xa0000,
  /** System BIOS area: firmware tables. */
  bios: 0xf0000,
  biosEnd: 0x100000,
  highMemory: 0x100000,
  /** Start of the PCI hole below 4 GiB. */
  pciHole: 0xc000_0000,
  /** 32-bit PCI memory window for BARs. */
  pciMem32: { base: 0xc000_0000, size: 0x2000_0000 },
  /** PCIe ECAM (MMCONFIG): 1 MiB per bus. */
  ecam: { base: 0xe000_0000, busCount: 256 },
  /**
   * Where SeaBIOS moves ECAM on a Q35 host bridge (its Q35_HOST_BRIDGE_PCIEXBAR_ADDR, 256 MiB): under firmware, low
   * RAM stays below it.
   */
  firmwareEcam: 0xb000_0000,
  /**
   * Under firmware, the low-RAM cap once RAM reaches `firmwareEcam` (QEMU's q35: below 4 GiB 2 GiB when RAM is at
   * least 2.75 GiB, the rest above 4 GiB), which leaves ECAM and the 32-bit PCI window free.
   */
  firmwareLowRamCap: 0x8000_0000,
  ioapic: 0xfec0_0000,
  lapic: 0xfee0_0000,
  /** KVM's TSS and identity-map pages (needed by KVM on Intel; reserved in e820). */
  kvmTss: 0xfffb_d000,
  kvmIdentityMap: 0xfffb_c000,
  fourGiB: 0x1_0000_0000,
  /** 64-bit PCI memory window, far above any RAM. */
  pciMem64: { base: 0x80_0000_0000, size: 0x80_0000_0000 },
  /** Port I/O window for PCI I/O BARs. */
  pciIo: { base: 0x6200, size: 0x9e00 },
} as const;

export const E820Type = { ram: 1, reserved: 2, acpi: 3, nvs: 4 } as const;
export type E820Type = (typeof E820Type)[keyof typeof E820Type];

export interface E820Entry {
  readonly addr: number;
  readonly size: number;
  readonly type: E820Type;
}

export interface RamBlock {
  readonly gpa: number;
  readonly size: number;
}

export interface MemoryMap {
  readonly ramBytes: number;
  /** RAM as contiguous blocks, one KVM memslot each. */
  readonly ram: readonly RamBlock[];
  /** The map the guest sees (Linux boot_params, and what BIOS-e820 prints). */
  readonly e820: readonly E820Entry[];
  /** RAM below 1 MiB and between 1 MiB and the hole / above 4 GiB, for CMOS sizing. */
  readonly lowKiB: number;
  readonly extendedBytes: number;
  readonly highBytes: number;
}

const MIB = 1024 * 1024;

export interface MemoryMapOptions {
  /**
   * Boot firmware (SeaBIOS) that moves ECAM to `Layout.firmwareEcam`: RAM below 4 GiB ends under it, as on QEMU's
   * q35 (all of it when RAM is less than 0xB0000000 bytes, else 2 GiB with the rest above 4 GiB).
   */
  readonly firmware?: boolean;
}

/**
 * Lays out `memoryMiB` of RAM: [0, low top) then [4 GiB, ...). The low top is the PCI hole (0xC0000000) for direct
 * boots and, under firmware, below the ECAM window firmware picks (see `MemoryMapOptions.firmware`). Firmware
 * regions and ECAM are reserved in the e820 map.
 */
export function buildMemoryMap(memoryMiB: number, options: MemoryMapOptions = {}): MemoryMap {
  if (!Number.isInteger(memoryMiB) || memoryMiB < 16 || memoryMiB > 1024 * 1024) {
    throw new ConfigurationError(`memory must be a whole number of MiB between 16 and 1048576 (got ${memoryMiB})`);
  }
  const ramBytes = memoryMiB * MIB;
  const low = options.firmware ? (ramBytes >= Layout.firmwareEcam ? Layout.firmwareLowRamCap : ramBytes) : Math.min(ramBytes, Layout.pciHole);
  const ecamBase = options.firmware ? Layout.firmwareEcam : Layout.ecam.base;
  const high = ramBytes - low;
  const ram: RamBlock[] = [{ gpa: 0, size: low }];
  if (high > 0) ram.push({ gpa: Layout.fourGiB, size: high });
  const e820: E820Entry[] = [
    { addr: 0, size: Layout.ebda, type: E820Type.ram },
    { addr: Layout.ebda, size: Layout.ebdaEnd - Layout.ebda, type: E820Type.reserved },
    { addr: Layout.bios, size: Layout.biosEnd - Layout.bios, type: E820Type.reserved },
    { addr: Layout.highMemory, size: low - Layout.highMemory, type: E820Type.ram },
    { addr: ecamBase, size: Layout.ecam.busCount * MIB, type: E820Type.reserved },
    { addr: Layout.kvmIdentityMap, size: 0x4000, type: E820Type.reserved },
  ];
  if (high > 0) e820.push({ addr: Layout.fourGiB, size: high, type: E820Type.ram });
  return {
    ramBytes,
    ram,
    e820,
    lowKiB: Layout.ebda / 1024,
    extendedBytes: low - Layout.highMemory,
    highBytes: high,
  };
}
