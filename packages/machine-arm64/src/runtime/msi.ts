import { ConfigurationError, type Logger, type MsiMessage, type MsiVector, type MsiVectorFactory, type MsiVectorSet, type PciAddress } from "@vmm/core";
import type { Arm64GsiRoute, Arm64Vm } from "@vmm/kvm-native";
import type { GsiRoutingTable } from "@vmm/machine";
import { SPI_COUNT, type Arm64MsiMessage } from "./interrupts.js";
import type { V2mFrame } from "./v2m-frame.js";

// Where a PCI function's MSIs go: with GICv3, to the ITS with the function's requester id as the device id (the
// devicetree's msi-map is the identity, so the requester id is the ITS DeviceID): through an irqfd on an MSI GSI
// route carrying the device id, or KVM_SIGNAL_MSI with it; with GICv2, to the GICv2m frame's MSI_SETSPI_NS
// register, whose write raises the SPI the message names.

/** A function's PCI requester id: bus << 8 | device << 3 | function. */
export function requesterId(a: Pick<PciAddress, "bus" | "device" | "function">): number {
  return (a.bus << 8) | (a.device << 3) | a.function;
}

/**
 * The GSI routing table with MSI routes for the ITS: KVM's default arm64 routes kept (GSI n to SPI n, which the SPI
 * lines' irqfds use), MSI routes above the SPIs with the message's device id.
 */
export const ITS_GSI_ROUTING: GsiRoutingTable<Arm64GsiRoute> = {
  fixed: () => Array.from({ length: SPI_COUNT }, (_, spi) => ({ gsi: spi, type: "irqchip", pin: spi })),
  firstMsiGsi: SPI_COUNT,
  msi: (gsi, m: Arm64MsiMessage) => ({ gsi, type: "msi", address: m.address, data: m.data, devid: m.devid }),
};

/** MSIs to the ITS from JS (a vector without a route): KVM_SIGNAL_MSI with the requester id, which the ITS needs to find the device's table. */
export function itsDelivery(vm: Pick<Arm64Vm, "signalMsi">): (message: Arm64MsiMessage) => void {
  return (m) => {
    if (m.devid === undefined) throw new ConfigurationError(`an MSI (0x${m.address.toString(16)}, 0x${m.data.toString(16)}) without a requester id cannot reach the ITS`);
    vm.signalMsi(m.address, m.data, m.devid);
  };
}

/** MSIs to the GICv2m frame at `base`: a 32-bit write of the data to the frame; messages elsewhere are dropped. */
export function v2mDelivery(frame: Pick<V2mFrame, "write">, base: number, logger: Logger): (message: Arm64MsiMessage) => void {
  return (m) => {
    const offset = m.address - base;
    if (offset >= 0 && offset < 0x1000) return frame.write(offset, 4, m.data);
    logger.debug(`MSI to 0x${m.address.toString(16)} dropped: the GICv2m frame is at 0x${base.toString(16)}`);
  };
}

/**
 * MSI and MSI-X vectors that carry their function's requester id, over `inner`'s vectors (irqfd routes for the
 * ITS, plain signals for the v2m frame). The machine attaches each function inside `attaching(requester, ...)`;
 * the capabilities allocate their vectors then (PciBus.attach calls the factory), and each message they program
 * carries the requester id of that moment. A guest programs MSIs after it has numbered the buses, so a function
 * behind a bridge has its bus number by then.
 */
export class RequesterMsiVectors implements MsiVectorFactory {
  private requester: (() => number) | undefined;

  constructor(private readonly inner: MsiVectorFactory) {}

  /** Runs `attach` with the vectors it allocates tagged by `requester`. */
  attaching<T>(requester: () => number, attach: () => T): T {
    const outer = this.requester;
    this.requester = requester;
    try {
      return attach();
    } finally {
      this.requester = outer;
    }
  }

  create(owner: string, count: number): MsiVectorSet {
    const requester = this.requester;
    if (!requester) throw new ConfigurationError(`${owner}: MSI vectors are only given to a function the machine is attaching`);
    const set = this.inner.create(owner, count);
    const tag = (m: MsiMessage): Arm64MsiMessage => ({ ...m, devid: requester() });
    const vectors: MsiVector[] = Array.from({ length: count }, (_, i) => {
      const v = set.vector(i);
      return {
        program: (m) => v.program(m && tag(m)),
        trigger: () => v.trigger(),
        get eventFd() {
          return v.eventFd;
        },
      };
    });
    return {
      count,
      vector: (index) => {
        const v = vectors[index];
        if (!v) throw new RangeError(`${owner}: MSI vector ${index} of ${count}`);
        return v;
      },
      batch: (fn) => set.batch(fn),
      close: () => set.close(),
    };
  }
}
