import { EdgeForwardingLine, SharedLine, type InterruptController, type InterruptLine, type MsiMessage } from "@vmm/core";

/** What the controller needs from the VM: the in-kernel irqchip's line and MSI injection. */
export interface IrqSink {
  irqLine(gsi: number, level: boolean): void;
  signalMsi(address: number, data: number): void;
}

/** GSIs the in-kernel IOAPIC has (pins 0-23). */
export const IOAPIC_PINS = 24;

/**
 * Interrupt delivery through KVM's in-kernel irqchip. Every `line(gsi)` is a new source of a wired-OR line per
 * GSI, so devices sharing a GSI (PCI INTx) do not clear each other's level; the irqchip sees only changes.
 */
export class KvmInterruptController implements InterruptController {
  /** MSIs injected with KVM_SIGNAL_MSI (one ioctl each) so far; irqfd deliveries are not counted here. */
  msiSignals = 0;
  private readonly shared = new Map<number, SharedLine>();

  constructor(private readonly vm: IrqSink) {}

  line(gsi: number): InterruptLine {
    if (!Number.isInteger(gsi) || gsi < 0 || gsi >= IOAPIC_PINS) throw new RangeError(`GSI ${gsi} is not an IOAPIC pin (0-${IOAPIC_PINS - 1})`);
    let line = this.shared.get(gsi);
    if (!line) {
      line = new SharedLine(new EdgeForwardingLine((level) => this.vm.irqLine(gsi, level)));
      this.shared.set(gsi, line);
    }
    return line.source();
  }

  signal(message: MsiMessage): void {
    this.msiSignals++;
    this.vm.signalMsi(message.address, message.data);
  }
}
