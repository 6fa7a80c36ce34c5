import {
  createMmioSpace,
  createPortIoSpace,
  GuestMemory,
  MemoryLogger,
  SignalMsiVectors,
  Tokens,
  TrappingIoEvents,
  type PciDevice,
} from "@vmm/core";
import { PciBus, type PciPlacement } from "@vmm/pci";
import { container as rootContainer } from "tsyringe";
import type { MachineConfig, VirtualMachineResult, VirtualMachine } from "../../src/arch/machine.js";

/** What a scripted "guest" does with the fake machine; resolves to how the run ends. */
export type GuestScript = (machine: FakeMachine) => Promise<VirtualMachineResult>;

const BAR_BASE = 0xe000_0000;

/**
 * A machine without KVM for assembly tests: real core services in a child container, devices' memory BARs
 * placed one after another in the MMIO space, and a scripted guest instead of vCPUs.
 */
export class FakeMachine implements VirtualMachine {
  readonly container = rootContainer.createChildContainer();
  readonly pio = createPortIoSpace();
  readonly mmio = createMmioSpace();
  readonly devices: PciDevice[] = [];
  readonly bars = new Map<string, number>();
  stopReason: string | undefined;
  closed = false;
  private next = BAR_BASE;
  /** With `realBus`, devices are attached to a real PciBus, which programs their BARs through config writes. */
  private readonly bus: PciBus | undefined;
  private stopped!: () => void;
  /** Resolves when stop() is called. */
  readonly stopRequested = new Promise<void>((resolve) => (this.stopped = resolve));
  /** Threads only when asked (--vcpu-threads): a fake has no default of its own to report. */
  get vcpuThreads(): boolean {
    return this.config.vcpuThreads === true;
  }

  constructor(
    readonly config: MachineConfig,
    private readonly guest: GuestScript,
    readonly withStop = true,
    realBus = false,
  ) {
    this.container.register(Tokens.GuestMemory, { useValue: new GuestMemory([{ gpa: 0, bytes: new Uint8Array(1 << 16) }]) });
    this.container.register(Tokens.PortIo, { useValue: this.pio });
    this.container.register(Tokens.Mmio, { useValue: this.mmio });
    this.container.register(Tokens.IoEvents, { useValue: new TrappingIoEvents() });
    this.container.register(Tokens.Logger, { useValue: new MemoryLogger() });
    if (!withStop) this.stop = undefined;
    this.bus = realBus
      ? new PciBus({
          pio: this.pio,
          mmio: this.mmio,
          msiVectors: new SignalMsiVectors({ signal: () => {} }),
          irq: () => ({ level: false, set: () => {} }),
          windows: { io: { base: 0x6200, size: 0x2000 }, mem32: { base: BAR_BASE, size: 0x0100_0000 } },
        })
      : undefined;
  }

  /** The real bus, when there is one. */
  get pciBus(): PciBus | undefined {
    return this.bus;
  }

  addPciDevice(device: PciDevice, placement?: PciPlacement): void {
    this.devices.push(device);
    if (this.bus) {
      this.bus.attach(device, placement);
      return;
    }
    for (const bar of device.bars) {
      const handler = device.barHandler?.(bar.index);
      if (!handler || bar.kind === "io") continue;
      this.mmio.register(this.next, bar.size, device.name, handler);
      this.bars.set(`${device.name}/${bar.index}`, this.next);
      this.next += bar.size;
    }
  }

  run(): Promise<VirtualMachineResult> {
    return this.guest(this);
  }

  stop?: (reason: string) => void = (reason) => {
    this.stopReason = reason;
    this.stopped();
  };

  close(): void {
    this.closed = true;
  }

  /** The guest-physical address of a device's BAR. */
  bar(device: string, index = 0): number {
    const a = this.bars.get(`${device}/${index}`);
    if (a === undefined) throw new Error(`no BAR ${index} for ${device}`);
    return a;
  }
}
