import { EdgeForwardingLine, SharedLine, type InterruptController, type InterruptLine, type MsiMessage } from "@vmm/core";
import { arm64SpiGsi, type Arm64Vm } from "@vmm/kvm-native";
import { GIC_NR_IRQS, GIC_SPI_BASE } from "../layout.js";

// Core's InterruptController over the vGIC. A line's number is the SPI number (INTID - 32), which is also its
// KVM GSI: KVM's default arm64 routing sends GSI n to SPI n. The UART is SPI 0, PCI INTx SPIs 1-4.

/** An MSI as the arm64 machine delivers it: the message and, for the ITS, the requester id it translates by. */
export interface Arm64MsiMessage extends MsiMessage {
  readonly devid?: number;
}

/** The SPIs a line can name: every INTID of the vGIC above the private ones. */
export const SPI_COUNT = GIC_NR_IRQS - GIC_SPI_BASE;

/**
 * SPI lines and MSI delivery. Every `line(spi)` is a new source of a wired-OR line per SPI (PCI INTx is shared);
 * KVM_IRQ_LINE sees only level changes, and each line offers `irqfd` (KVM_IRQFD with a resample fd on its GSI).
 * `signal` hands each MSI to `deliverMsi` (the ITS with its device id, or the GICv2m frame; see msi.ts).
 */
export class Arm64InterruptController implements InterruptController {
  /** MSIs delivered from JS so far (one ioctl or one frame write each). */
  msiSignals = 0;
  private readonly shared = new Map<number, SharedLine>();

  constructor(
    private readonly vm: Pick<Arm64Vm, "irqLine" | "irqfd">,
    private readonly deliverMsi: (message: Arm64MsiMessage) => void,
  ) {}

  line(spi: number): InterruptLine {
    if (!Number.isInteger(spi) || spi < 0 || spi >= SPI_COUNT) throw new RangeError(`SPI ${spi} is not one of the vGIC's (0-${SPI_COUNT - 1})`);
    let line = this.shared.get(spi);
    if (!line) {
      const intid = GIC_SPI_BASE + spi;
      const vm = this.vm;
      line = new SharedLine(
        new EdgeForwardingLine(
          (level) => vm.irqLine({ type: "spi", intid }, level),
          (trigger, resample) => vm.irqfd(trigger, arm64SpiGsi(intid), resample),
        ),
      );
      this.shared.set(spi, line);
    }
    return line.source();
  }

  signal(message: Arm64MsiMessage): void {
    this.msiSignals++;
    this.deliverMsi(message);
  }
}
