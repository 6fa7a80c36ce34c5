import { EdgeForwardingLine, SharedLine, type InterruptController, type InterruptLine, type MsiMessage } from "@vmm/core";

/** What the controller needs from the VM: the in-kernel irqchip's line and MSI injection. */
export interface IrqSink {
  irqLine(gsi: number, level: boolean): void;
  signalMsi(address: number, data: number): void;
  /** KVM_IRQFD with a resample fd (a level-triggered GSI): when present, every line offers `irqfd`. */
  irqfd?(fd: number, gsi: number, resample: number): { remove(): void };
}

/** GSIs the in-kernel IOAPIC has (pins 0-23). */
export const IOAPIC_PINS = 24;

/**
 * Interrupt delivery through KVM's in-kernel irqchip. Every `line(gsi)` is a new source of a wired-OR line per
 * GSI, so devices sharing a GSI (PCI INTx) do not clear each other's level; the irqchip sees only changes. Each
 * line also offers `irqfd(trigger, resample)` (KVM_IRQFD with a resample fd on its GSI): a passthrough device's
 * INTx then reaches the guest, and its EOI the device, without a userspace hop. KVM keeps that level apart from
 * the one `set` drives and ORs them.
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
      const vm = this.vm;
      const irqfd = vm.irqfd ? (trigger: number, resample: number) => vm.irqfd!(trigger, gsi, resample) : undefined;
      line = new SharedLine(new EdgeForwardingLine((level) => vm.irqLine(gsi, level), irqfd));
      this.shared.set(gsi, line);
    }
    return line.source();
  }

  signal(message: MsiMessage): void {
    this.msiSignals++;
    this.vm.signalMsi(message.address, message.data);
  }
}
