// arm64 interrupt injection with an in-kernel vGIC. KVM_IRQ_LINE's `irq` field packs (asm/kvm.h):
//   bits 31-28 vcpu index bits 11-8 (KVM_CAP_ARM_IRQ_LINE_LAYOUT_2) | 27-24 type | 23-16 vcpu index bits 7-0 | 15-0 number
// with type SPI (the vcpu field ignored) or PPI (per vCPU); the number is the GIC INTID. irqfd and GSI routes
// name SPIs by GSI instead: KVM's default arm64 routing maps GSI n to irqchip pin n, which is SPI INTID n + 32.

/** The first SPI and the first PPI INTID (INTIDs below 16 are SGIs, which only the guest sends). */
export const ARM64_FIRST_SPI = 32;
export const ARM64_FIRST_PPI = 16;
/** The last SPI a GIC can have (1020-1023 are special INTIDs). */
export const ARM64_LAST_SPI = 1019;

const IRQ_TYPE = { spi: 1, ppi: 2 } as const;

/**
 * An interrupt line into the vGIC: a shared peripheral interrupt by INTID (32-1019), or a private one (16-31) of
 * the vCPU at `vcpu` (its index: the order vCPUs were created in, which equals the id when ids count from 0).
 */
export type Arm64Irq = { type: "spi"; intid: number } | { type: "ppi"; intid: number; vcpu: number };

function assertRange(what: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${what} must be ${min} to ${max}, got ${v}`);
}

/** The `irq` field of KVM_IRQ_LINE for an interrupt line (an unsigned 32-bit number). */
export function arm64IrqLine(irq: Arm64Irq): number {
  if (irq.type === "spi") {
    assertRange("SPI INTID", irq.intid, ARM64_FIRST_SPI, ARM64_LAST_SPI);
    return ((IRQ_TYPE.spi << 24) | irq.intid) >>> 0;
  }
  if (irq.type === "ppi") {
    assertRange("PPI INTID", irq.intid, ARM64_FIRST_PPI, ARM64_FIRST_SPI - 1);
    assertRange("vcpu index", irq.vcpu, 0, 0xfff);
    return (((irq.vcpu >> 8) << 28) | (IRQ_TYPE.ppi << 24) | ((irq.vcpu & 0xff) << 16) | irq.intid) >>> 0;
  }
  throw new TypeError(`interrupt type must be "spi" or "ppi", got ${(irq as { type: string }).type}`);
}

/** The GSI of an SPI for irqfd and GSI routes: INTID - 32. */
export function arm64SpiGsi(intid: number): number {
  assertRange("SPI INTID", intid, ARM64_FIRST_SPI, ARM64_LAST_SPI);
  return intid - ARM64_FIRST_SPI;
}
