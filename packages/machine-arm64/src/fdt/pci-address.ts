// PCI bus addresses in the devicetree (the PCI bus binding, IEEE 1275 PCI supplement): three cells, phys.hi then a
// 64-bit address. phys.hi = npt000ss bbbbbbbb dddddfff rrrrrrrr: p prefetchable, ss the space, then bus, device,
// function and register.

export const PciSpace = { config: 0, io: 1, mem32: 2, mem64: 3 } as const;
export type PciSpace = (typeof PciSpace)[keyof typeof PciSpace];

export interface PciPhysHi {
  readonly space: PciSpace;
  readonly prefetchable?: boolean;
  readonly bus?: number;
  readonly device?: number;
  readonly function?: number;
}

export function physHi(a: PciPhysHi): number {
  return (((a.prefetchable ? 1 : 0) << 30) | (a.space << 24) | ((a.bus ?? 0) << 16) | ((a.device ?? 0) << 11) | ((a.function ?? 0) << 8)) >>> 0;
}

/** A 3-cell PCI address as one bigint (phys.hi above the 64-bit address), for FdtNodeBuilder.ranges. */
export function pciAddress(hi: PciPhysHi, address: number): bigint {
  return (BigInt(physHi(hi)) << 64n) | BigInt(address);
}

/** The parts of a phys.hi cell. */
export function decodePhysHi(cell: number): Required<PciPhysHi> {
  return {
    space: ((cell >>> 24) & 3) as PciSpace,
    prefetchable: ((cell >>> 30) & 1) === 1,
    bus: (cell >>> 16) & 0xff,
    device: (cell >>> 11) & 0x1f,
    function: (cell >>> 8) & 7,
  };
}
