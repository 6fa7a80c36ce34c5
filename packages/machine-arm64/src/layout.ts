// The arm64 machine's fixed guest-physical layout and interrupt numbers. Only RAM (base and size) and the 64-bit
// PCI window above it move; memory-map.ts places them and checks the result.
//
// Why these addresses (kvmtool's arm layout, the seeds):
// - The PCI I/O window sits at 0 and is 64 KiB: PCI bus I/O addresses are CPU addresses, as on kvmtool.
// - The UART is at 0x1000000, alone in its 64 KiB page and away from the I/O window: kvmtool's UART inside the I/O
//   window broke EDK2 and 64K-page guests until it moved to 0x1000000.
// - ECAM at 0x40000000, then the 32-bit MMIO window up to 2 GiB, and RAM from 2 GiB: where kvmtool puts them, which
//   also keeps guest RAM where Juno's PCIe root complex lets DMA through (its config space sits at 0x40000000,
//   where QEMU's default RAM starts); --mem-base moves RAM for hosts where 2 GiB collides with something else.
// - The GIC just below ECAM, every frame 64 KiB aligned (the largest host page size).

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;

export const Arm64Layout = {
  /** PCI I/O space: bus addresses 0-0xffff at CPU addresses 0-0xffff. */
  pciIo: { base: 0x0, size: 64 * KIB },
  /** The 8250/16550A UART: 8 byte-wide registers in a 64 KiB page of their own. */
  uart: { base: 0x0100_0000, size: 64 * KIB, registers: 8 },
  /** GICv3 redistributors: 128 KiB per vCPU (RD_base and SGI_base frames) from here up. */
  gicRedistributors: { base: 0x3000_0000, perCpu: 128 * KIB },
  /** GIC distributor (v2 and v3). */
  gicDistributor: { base: 0x3ff0_0000, size: 64 * KIB },
  /** GICv2 CPU interface: KVM's is 8 KiB; the page is reserved whole. */
  gicCpuInterface: { base: 0x3ff1_0000, size: 64 * KIB, used: 8 * KIB },
  /** GICv3 ITS: control and translation frames. */
  gicIts: { base: 0x3ff2_0000, size: 128 * KIB },
  /** GICv2m MSI frame (MSI_TYPER, MSI_SETSPI_NS): 4 KiB used. */
  gicV2m: { base: 0x3ff2_0000, size: 64 * KIB, used: 4 * KIB },
  /** PCIe ECAM: 1 MiB per bus, 256 buses. */
  ecam: { base: 0x4000_0000, busCount: 256 },
  /** 32-bit PCI memory window, up to the default RAM base. */
  pciMmio32: { base: 0x5000_0000, size: 0x3000_0000 },
  /** RAM's default base: 2 GiB. */
  defaultRamBase: 2 * GIB,
  /** The 64-bit PCI memory window: this size, aligned to it, above RAM and above 4 GiB. */
  pciMmio64Size: 64 * GIB,
  /** KVM's default guest physical address size on arm64 (VM type 0): 40 bits. */
  defaultIpaBits: 40,
  /** KVM's arm64 vCPU limit. */
  maxCpus: 512,
  /** GICv2 addresses at most 8 CPUs. */
  maxCpusGicV2: 8,
} as const;

/** The GIC's interrupt number spaces: INTIDs 16-31 are PPIs, 32 and up SPIs (INTID = 32 + SPI number). */
export const GIC_SPI_BASE = 32;
export const GIC_PPI_BASE = 16;

/** The architected timer's PPIs, in the order the arm,armv8-timer binding lists them (KVM's defaults). */
export const TIMER_PPIS = { securePhysical: 13, nonSecurePhysical: 14, virtual: 11, hypervisor: 10 } as const;

/** SPI numbers of the machine's wired interrupts. */
export const Arm64Spis = {
  uart: 0,
  /** INTA#-INTD# of the host bridge's slots, swizzled over these four (see pci-intx.ts). */
  pciIntx: [1, 2, 3, 4],
  /** GICv2m: the SPIs MSIs are translated to. */
  v2mMsi: { first: 32, count: 64 },
} as const;

/**
 * Interrupt lines the vGIC is created with (KVM_DEV_ARM_VGIC_GRP_NR_IRQS: a multiple of 32 covering SGIs, PPIs and
 * every SPI above).
 */
export const GIC_NR_IRQS = 128;

/** The UART's input clock: 1.8432 MHz, the classic 16550 crystal (115200 baud with divisor 1). */
export const UART_CLOCK_HZ = 1_843_200;
