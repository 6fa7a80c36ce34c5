import { RegisterTable, type AddressSpace, type IoHandler, type SmallAccessSize } from "@vmm/core";
import type { Arm64Vm } from "@vmm/kvm-native";
import { Arm64Spis, GIC_SPI_BASE } from "../layout.js";
import type { AddressRange } from "../ranges.js";

// The GICv2m MSI frame (ARM's GICv2m extension, as Linux's irq-gic-v2m driver reads it): KVM's GICv2 has no MSI
// support of its own, so the VMM emulates the frame. MSI_TYPER says which SPIs the frame owns; a write of an SPI's
// INTID to MSI_SETSPI_NS (a device's MSI, or the guest itself) raises that SPI as an edge.

export const V2mRegister = { MSI_TYPER: 0x008, MSI_SETSPI_NS: 0x040, MSI_IIDR: 0xfcc } as const;
const FRAME_BYTES = 0x1000;

export interface V2mFrameOptions {
  /** INTID of the first SPI the frame raises. */
  readonly firstIntid: number;
  readonly count: number;
  /** Raises an edge on the SPI with this INTID. */
  readonly raise: (intid: number) => void;
}

interface V2mState {
  readonly o: V2mFrameOptions;
  /** Writes naming an INTID outside the frame's SPIs (dropped). */
  refused: number;
}

const registers = new RegisterTable<V2mState>(
  [
    // Bits 25:16 the first INTID, bits 9:0 the number of SPIs.
    { name: "MSI_TYPER", offset: V2mRegister.MSI_TYPER, width: 4, read: (s) => ((s.o.firstIntid << 16) | s.o.count) >>> 0 },
    { name: "MSI_SETSPI_NS", offset: V2mRegister.MSI_SETSPI_NS, width: 4, access: "wo", write: (s, v) => setSpi(s, v) },
    { name: "MSI_IIDR", offset: V2mRegister.MSI_IIDR, width: 4 },
  ],
  { size: FRAME_BYTES, narrowWrite: "zero-extend" },
);

function setSpi(s: V2mState, intid: number): void {
  if (intid < s.o.firstIntid || intid >= s.o.firstIntid + s.o.count) {
    s.refused++;
    return;
  }
  s.o.raise(intid);
}

/** The frame's 4 KiB of registers as an MMIO handler; a device's MSI to the frame makes the same write (msi.ts). */
export class V2mFrame implements IoHandler {
  private readonly state: V2mState;

  constructor(options: V2mFrameOptions) {
    this.state = { o: options, refused: 0 };
  }

  /** MSI_SETSPI_NS writes naming an SPI the frame does not own. */
  get refused(): number {
    return this.state.refused;
  }

  read(offset: number, size: SmallAccessSize): number {
    return registers.read(this.state, offset, size);
  }

  write(offset: number, size: SmallAccessSize, value: number): void {
    registers.write(this.state, offset, size, value);
  }
}

/**
 * The machine's frame: on MMIO at `range`, owning the SPIs the devicetree gives it (Arm64Spis.v2mMsi), raising
 * each as an edge on the vGIC (KVM_IRQ_LINE up, then down: Linux configures these SPIs edge-triggered).
 */
export function installV2mFrame(mmio: AddressSpace, range: AddressRange, vm: Pick<Arm64Vm, "irqLine">): V2mFrame {
  const frame = new V2mFrame({
    firstIntid: GIC_SPI_BASE + Arm64Spis.v2mMsi.first,
    count: Arm64Spis.v2mMsi.count,
    raise: (intid) => {
      vm.irqLine({ type: "spi", intid }, true);
      vm.irqLine({ type: "spi", intid }, false);
    },
  });
  mmio.register(range.base, range.size, "gicv2m frame", frame);
  return frame;
}
