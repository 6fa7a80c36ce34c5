import {
  ConfigurationError,
  SignalMsiVectors,
  StderrLogger,
  Tokens,
  createMmioSpace,
  createPortIoSpace,
  type AddressSpace,
  type GuestMemory,
  type Logger,
  type PciAddress,
  type PciDevice,
} from "@vmm/core";
import type { Arm64GsiRoute, Arm64Vcpu, Arm64Vm, Vgic } from "@vmm/kvm-native";
import { feedConsoleInput, KvmIoEvents, KvmMemoryMapper, KvmMsiVectors, MsiRouter, type MachineResult } from "@vmm/machine";
import type { PciBus, PciPlacement, PciTopologyNode } from "@vmm/pci";
import type { DependencyContainer } from "tsyringe";
import { rootContainer } from "./root-container.js";
import { Arm64Layout, Arm64Spis } from "../layout.js";
import type { Arm64LoadPlan } from "../loader/load-plan.js";
import { describeArm64Machine, type Arm64Machine, type Arm64MachineOptions } from "../machine.js";
import { FIRST_DEVICE_SLOT, backRam, copyBootFiles } from "./guest-ram.js";
import { Arm64InterruptController, type Arm64MsiMessage } from "./interrupts.js";
import { maxVcpus, openArm64Kvm, type Arm64Kvm } from "./kvm.js";
import { ITS_GSI_ROUTING, RequesterMsiVectors, itsDelivery, requesterId, v2mDelivery } from "./msi.js";
import { createArm64PciHost } from "./pci-host.js";
import { Arm64RunLoop } from "./run-loop.js";
import { createSerial, type SerialOptions } from "./serial.js";
import { createVcpus, setBootEntry } from "./vcpus.js";
import { installV2mFrame, type V2mFrame } from "./v2m-frame.js";
import { createVgic } from "./vgic.js";

export interface Arm64KvmMachineOptions extends Arm64MachineOptions {
  /** Used in messages. */
  readonly name?: string;
  /** Without `output`, the UART writes to stdout; without `input`, it reads stdin unless `console` is "virtio". */
  readonly serial?: SerialOptions;
  /** Which console the guest uses (the cli's --console); "virtio" leaves stdin to a virtio console device. */
  readonly console?: "serial" | "virtio";
  readonly logger?: Logger;
  /** Trace every exit and unhandled access through logger.debug. */
  readonly debug?: boolean;
  /** Parent of the VM's child container (default: tsyringe's root container). */
  readonly container?: DependencyContainer;
  /** Longest time one vCPU runs before the event loop and the other vCPUs get a turn (ms, default 5). */
  readonly maxSliceMs?: number;
  /** KVM (default: /dev/kvm, opened and closed by the machine). */
  readonly kvm?: Arm64Kvm;
}

/**
 * An arm64 virtual machine on KVM, as describeArm64Machine lays it out: RAM in one memslot with the kernel, initrd
 * and devicetree in it, the vCPUs (PSCI in KVM), the vGIC (GICv3 with an ITS, or GICv2 with the VMM's v2m frame),
 * the 16550 UART on MMIO raising SPI 0, and the ECAM PCI host bridge with its I/O and memory windows. Core's
 * services are registered under `Tokens` in `container`, as on x86_64. Written for arm64 hosts with KVM; it has
 * only run over a recording fake of kvm-native here (README, "What is proven").
 */
export class Arm64KvmMachine {
  readonly name: string;
  readonly description: Arm64Machine;
  readonly container: DependencyContainer;
  readonly memory: GuestMemory;
  readonly mmio: AddressSpace;
  /** PCI I/O space, reached through the MMIO window at `memoryMap.pci.io`. */
  readonly pio: AddressSpace;
  readonly interrupts: Arm64InterruptController;
  readonly ioEvents: KvmIoEvents;
  /** GICv3: MSI routes with device ids, each with an irqfd (MSIs without a userspace hop). */
  readonly msiRoutes: MsiRouter<Arm64GsiRoute> | undefined;
  readonly pci: PciBus;
  readonly vgic: Vgic;
  /** GICv2 only. */
  readonly v2m: V2mFrame | undefined;
  readonly uart: ReturnType<typeof createSerial>["uart"];
  readonly logger: Logger;
  private readonly loadPlan: Arm64LoadPlan;
  private readonly kvm: Arm64Kvm;
  private readonly ownsKvm: boolean;
  private readonly vm: Arm64Vm;
  private readonly vcpus: Arm64Vcpu[] = [];
  private readonly msiVectors: RequesterMsiVectors;
  /** GICv3: the irqfd-backed vector sets (closed before the VM). */
  private readonly routedVectors: KvmMsiVectors | undefined;
  private readonly flushSerial: () => void;
  private readonly loop: Arm64RunLoop;
  private state: "created" | "running" | "done" | "closed" = "created";
  private loaded = false;

  constructor(private readonly options: Arm64KvmMachineOptions) {
    this.name = options.name ?? "vm";
    this.logger = options.logger ?? new StderrLogger(options.debug ?? false);
    this.description = describeArm64Machine(options);
    if (!this.description.loadPlan) throw new ConfigurationError(`${this.name}: an arm64 guest needs a kernel (-k Image)`);
    this.loadPlan = this.description.loadPlan;
    const map = this.description.memoryMap;
    this.ownsKvm = !options.kvm;
    this.kvm = options.kvm ?? openArm64Kvm();
    try {
      const most = maxVcpus(this.kvm);
      if (options.cpus > most) throw new ConfigurationError(`${options.cpus} vCPUs asked for, but this host's KVM allows at most ${most}`);
      // KVM's default IPA size is asked for with VM type 0, which hosts without KVM_CAP_ARM_VM_IPA_SIZE take too.
      this.vm = this.kvm.createArm64Vm(map.ipaBits === Arm64Layout.defaultIpaBits ? {} : { ipaBits: map.ipaBits });
      this.memory = backRam(this.vm, map.ram);
      this.vcpus.push(...createVcpus(this.vm, options.cpus));
      this.vgic = createVgic(this.vm, map.gic);

      this.mmio = createMmioSpace();
      this.pio = createPortIoSpace();
      if (options.debug) {
        const trace = (a: { space: string; address: number; size: number; write: boolean }) =>
          this.logger.debug(`unhandled ${a.space} ${a.write ? "write" : "read"}${a.size} at 0x${a.address.toString(16)}`);
        this.mmio.trace = trace;
        this.pio.trace = trace;
      }
      const vm = this.vm;
      let deliverMsi: (m: Arm64MsiMessage) => void;
      if (map.gic.v2m) {
        this.v2m = installV2mFrame(this.mmio, map.gic.v2m, vm);
        deliverMsi = v2mDelivery(this.v2m, map.gic.v2m.base, this.logger);
      } else {
        this.v2m = undefined;
        deliverMsi = itsDelivery(vm);
      }
      this.interrupts = new Arm64InterruptController(vm, deliverMsi);
      const serial = createSerial(options.serial?.output, this.interrupts.line(Arm64Spis.uart));
      this.uart = serial.uart;
      this.flushSerial = serial.flush;
      this.mmio.register(map.uart.base, Arm64Layout.uart.registers, "uart 16550", this.uart);
      this.ioEvents = new KvmIoEvents(vm);
      // GICv3: irqfd routes to the ITS, KVM_SIGNAL_MSI where a route cannot be had; GICv2: frame writes from JS.
      this.msiRoutes = map.gic.its ? new MsiRouter<Arm64GsiRoute>(vm, undefined, ITS_GSI_ROUTING) : undefined;
      this.routedVectors = this.msiRoutes && new KvmMsiVectors(this.msiRoutes, this.interrupts, this.logger);
      this.msiVectors = new RequesterMsiVectors(this.routedVectors ?? new SignalMsiVectors(this.interrupts));
      this.pci = createArm64PciHost({ windows: map.pci, mmio: this.mmio, pio: this.pio, interrupts: this.interrupts, msiVectors: this.msiVectors, logger: this.logger });
      this.loop = new Arm64RunLoop({ mmio: this.mmio, logger: this.logger, maxSliceMs: options.maxSliceMs, trace: options.debug });
      for (const vcpu of this.vcpus) this.loop.add(vcpu);

      this.container = (options.container ?? rootContainer).createChildContainer();
      this.container.register(Tokens.GuestMemory, { useValue: this.memory });
      this.container.register(Tokens.PortIo, { useValue: this.pio });
      this.container.register(Tokens.Mmio, { useValue: this.mmio });
      this.container.register(Tokens.Interrupts, { useValue: this.interrupts });
      this.container.register(Tokens.IoEvents, { useValue: this.ioEvents });
      this.container.register(Tokens.MemoryMapper, { useValue: new KvmMemoryMapper(vm, FIRST_DEVICE_SLOT) });
      this.container.register(Tokens.Logger, { useValue: this.logger });
    } catch (e) {
      this.release();
      throw e;
    }
  }

  /** Places a PCI function (before `run`): on bus 0 by default, or as `placement` says. */
  addPciDevice(device: PciDevice, placement?: PciPlacement): void {
    if (this.state !== "created") throw new ConfigurationError(`${device.name}: PCI devices must be added before the machine runs`);
    this.msiVectors.attaching(
      () => this.requesterOf(device),
      () => this.pci.attach(device, placement),
    );
  }

  /** The attached functions with the addresses config space gives them now. */
  pciFunctions(): Array<{ address: PciAddress; device: PciDevice }> {
    return this.pci.functions();
  }

  pciTopology(): PciTopologyNode[] {
    return this.pci.topology();
  }

  /**
   * Userspace MMIO exits so far, MSIs delivered from JS (KVM_SIGNAL_MSI or v2m frame writes) and vector deliveries
   * that fell back to KVM_SIGNAL_MSI from their irqfd route.
   */
  counters(): Readonly<Record<string, number>> {
    return { mmioExits: this.loop.mmioExits, msiSignals: this.interrupts.msiSignals, msiFallbacks: this.routedVectors?.fallbacks ?? 0 };
  }

  /** Copies the kernel, initrd and devicetree into RAM and points the boot vCPU at the kernel (done by `run`). */
  load(): Arm64LoadPlan {
    if (!this.loaded) {
      copyBootFiles(this.memory, this.loadPlan, this.description.dtb, this.description.initrd);
      setBootEntry(this.vcpus[0]!, this.loadPlan.entry);
      this.loaded = true;
    }
    return this.loadPlan;
  }

  /** Runs the guest until it powers off (status 0), resets (status 0, reason "reset"), fails or `stop` is called. */
  async run(): Promise<MachineResult> {
    if (this.state !== "created") throw new ConfigurationError(`${this.name}: a machine runs once`);
    this.load();
    this.state = "running";
    const stopInput = feedConsoleInput(this.uart, this.options.serial, this.options.console);
    try {
      return await this.loop.run();
    } finally {
      stopInput();
      this.flushSerial();
      this.state = "done";
    }
  }

  /** Stops running the vCPUs, keeping all their state, until `resume()` (as @vmm/machine's Machine); false when not running or already paused. */
  pause(): boolean {
    return this.state === "running" && this.loop.pause();
  }

  /** Runs a paused machine's vCPUs again; false when it was not paused. */
  resume(): boolean {
    return this.loop.resume();
  }

  get paused(): boolean {
    return this.loop.paused;
  }

  /** Asks a running machine to stop; `run()` then resolves with reason "stopped". */
  stop(reason: string): void {
    this.loop.stop({ status: 1, reason: "stopped", message: `stopped: ${reason}` });
  }

  /** Releases the VM (its vGIC, vCPUs and RAM) and KVM when the machine opened it. */
  close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.release();
  }

  private requesterOf(device: PciDevice): number {
    const f = this.pci.functions().find((x) => x.device === device);
    if (!f) throw new ConfigurationError(`${device.name} is not on the PCI bus`);
    return requesterId(f.address);
  }

  private release(): void {
    this.routedVectors?.close(); // MSI routes and their irqfds, while the VM fd is still open
    this.ioEvents?.close();
    this.vm?.close();
    if (this.ownsKvm) this.kvm?.close();
  }
}
