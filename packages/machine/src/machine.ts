import { readFileSync } from "node:fs";
import {
  ConfigurationError,
  GuestMemory,
  StderrLogger,
  Tokens,
  createMmioSpace,
  createPortIoSpace,
  type AddressSpace,
  type Logger,
  type PciDevice,
  SnapshotError,
  type StateValue,
} from "@vmm/core";
import type { DependencyContainer } from "tsyringe";
import { rootContainer } from "./root-container.js";
import { installLegacyDevices, type LegacyDevices } from "./devices/legacy.js";
import { consoleOutput, feedConsoleInput, type ConsoleStreams } from "./devices/console.js";
import { PM_TIMER_PORT } from "./devices/pm-timer.js";
import { ACPI_PM_PLATFORM } from "./devices/acpi-pm.js";
import { writeFirmwareTables } from "./firmware/index.js";
import type { PlatformDescription } from "./firmware/platform.js";
import { MpState, createUserfaultPager, fileDataRanges, type Kvm, type Vcpu, type Vm } from "@vmm/kvm-native";
import { openKvm } from "./kvm-open.js";
import { decompressPayloadAsync, loadBzImage } from "./loaders/bzimage.js";
import { loadElf } from "./loaders/elf.js";
import type { LoadedImage } from "./loaders/image.js";
import { loadRaw } from "./loaders/raw.js";
import { RunLoop, type MachineResult } from "./run-loop.js";
import { waitingInKernel } from "./vcpu-blocking.js";
import { describeVcpu, type VcpuState } from "./vcpu-state.js";
import { KvmInterruptController } from "./services/interrupts.js";
import { KvmIoEvents } from "./services/io-events.js";
import { KvmMemoryMapper } from "./services/memory-mapper.js";
import { MsiRouter } from "./services/msi-routes.js";
import { BootFramebufferSlot } from "./devices/boot-framebuffer.js";
import { I8042_KEYBOARD_IRQ } from "./devices/i8042.js";
import { KeysymKeyboard } from "./devices/keyboard.js";
import { createPciHost, type PciHost } from "./services/pci.js";
import { Q35HostBridge, type PciPlacement, type PciTopologyNode } from "@vmm/pci";
import { FirmwareBoot, ramSlots } from "./firmware-boot.js";
import { ResetControl } from "./devices/reset-control.js";
import { patchCpuid } from "./x86_64/cpuid.js";
import { restoreX86Snapshot, saveX86Snapshot, type LazyMemory, type LazyMemoryFactory, type LoadedSnapshot, type RestoreMemory, type SnapshotSummary, type X86SnapshotParts } from "./snapshot/x86-machine.js";
import { Layout, buildMemoryMap, type MemoryMap } from "./x86_64/memory-map.js";

export type KernelKind = "raw" | "elf" | "elf64" | "bzimage";

export interface MachineOptions {
  /** Used in messages. */
  readonly name?: string;
  /** Guest RAM in MiB (or `memory` in bytes, a whole number of MiB). */
  readonly memoryMiB?: number;
  readonly memory?: number;
  /** vCPUs (default 1). */
  readonly cpus?: number;
  /** The kernel to load (required unless `firmware` is given; refused with it). */
  readonly kernel?: { readonly kind: KernelKind; readonly path?: string; readonly bytes?: Uint8Array };
  /** Linux command line (bzImage only). */
  readonly cmdline?: string;
  readonly initrd?: { readonly path?: string; readonly bytes?: Uint8Array };
  /**
   * COM1: host input and where the guest's output goes. Without this option COM1 writes to stdout and, unless
   * `console` is "virtio", reads stdin while the machine runs.
   */
  readonly serial?: ConsoleStreams;
  /** Which console the guest uses (the cli's --console); "virtio" leaves stdin to a virtio console device. */
  readonly console?: "serial" | "virtio";
  readonly logger?: Logger;
  /** Trace every exit and unhandled access through logger.debug. */
  readonly debug?: boolean;
  /** Parent of the VM's child container (default: tsyringe's root container). */
  readonly container?: DependencyContainer;
  /** Longest time one vCPU runs before the event loop and the other vCPUs get a turn (ms, default 5). */
  readonly maxSliceMs?: number;
  /**
   * Run each vCPU on a native thread of its own, in parallel; false: all take turns on the JS thread. Default: threads
   * when `cpus` > 1 (one vCPU gains nothing from a thread, and its exits cost less on the JS thread). Exits that need
   * a device are handed to the JS thread; `spinUs`: how long the vCPU thread and the JS thread spin for each other
   * before they sleep (default 20). See the README's "vCPUs".
   */
  readonly vcpuThreads?: boolean | { readonly spinUs?: number };
  /** bzImage: who decompresses the kernel (see BzImageOptions.decompress; default "host"). */
  readonly decompress?: "host" | "guest";
  /** Host clock for the RTC (tests). */
  readonly now?: () => Date;
  /**
   * Boot firmware (SeaBIOS's bios.bin): mapped read-only below 4 GiB, its last 128 KiB shadowed at 0xE0000 through
   * the host bridge's PAM registers; vCPU 0 starts at the reset vector; the tables go through fw_cfg.
   */
  readonly firmware?: { readonly path?: string; readonly bytes?: Uint8Array };
  /** Where the debug console's bytes (port 0x402, firmware's log) go; discarded without it. */
  readonly debugcon?: (bytes: Uint8Array) => void;
}

const FIRST_DEVICE_SLOT = 8;
/** How often a lazily restored machine checks that every page was served from its file. */
const LAZY_MEMORY_CHECK_MS = 100;
const RFLAGS_IF = 0x200;

function readImage(what: string, source: { path?: string; bytes?: Uint8Array }): Uint8Array {
  if (source.bytes) return source.bytes;
  if (!source.path) throw new ConfigurationError(`${what}: give a path or bytes`);
  try {
    return readFileSync(source.path);
  } catch (e) {
    throw new ConfigurationError(`${what} '${source.path}' cannot be read: ${(e as Error).message}`);
  }
}

function memoryMiB(o: MachineOptions): number {
  if (o.memoryMiB !== undefined) return o.memoryMiB;
  if (o.memory !== undefined) {
    if (o.memory % (1024 * 1024)) throw new ConfigurationError(`memory must be a whole number of MiB (got ${o.memory} bytes)`);
    return o.memory / (1024 * 1024);
  }
  return 256;
}

/**
 * An x86_64 virtual machine on KVM: RAM below the PCI hole (and above 4 GiB), the in-kernel irqchip and PIT,
 * COM1, i8042, CMOS RTC, port 0x80, the debug-exit port, the PCI host bridge (CF8/CFC and ECAM), firmware
 * tables (MP and ACPI) and the vCPUs. Core services are registered under `Tokens` in `container`.
 */
export class Machine {
  readonly name: string;
  readonly container: DependencyContainer;
  readonly memory: GuestMemory;
  readonly memoryMap: MemoryMap;
  readonly pio: AddressSpace;
  readonly mmio: AddressSpace;
  readonly interrupts: KvmInterruptController;
  readonly ioEvents: KvmIoEvents;
  /** MSIs raised through irqfd (no userspace exit). */
  readonly msiRoutes: MsiRouter;
  readonly pci: PciHost;
  readonly legacy: LegacyDevices;
  /** The Q35-like host bridge at 00:00.0 (PCIEXBAR moves ECAM; PAM drives the BIOS shadow under firmware). */
  readonly hostBridge: Q35HostBridge;
  /** Port 0xCF9. */
  readonly resetControl: ResetControl;
  /** Firmware, shadow RAM, fw_cfg and debug console of a firmware boot. */
  readonly firmwareBoot: FirmwareBoot | undefined;
  private readonly flushSerial: () => void;
  /** The PS/2 keyboard by keysym; also in `container` under Tokens.Keyboard. */
  readonly keyboard: KeysymKeyboard;
  /** A display device's screen_info for bzImage boots; also in `container` under Tokens.BootFramebuffer. */
  readonly bootFramebuffer = new BootFramebufferSlot();
  readonly logger: Logger;
  readonly cpus: number;
  /** Whether the vCPUs run on threads of their own (MachineOptions.vcpuThreads, or its default for `cpus`). */
  readonly vcpuThreads: boolean;
  private readonly kvm: Kvm;
  private readonly vm: Vm;
  private readonly vcpus: Vcpu[] = [];
  /** The functions firmware tries first, in order (`setBootOrder`). */
  private bootDevices: readonly PciDevice[] = [];
  private readonly loop: RunLoop;
  private state: "created" | "running" | "done" | "closed" = "created";
  private loaded: LoadedImage | undefined;
  /** A bzImage's kernel decompressed on the host ahead of load() (XZ is only decoded asynchronously). */
  private vmlinux: Uint8Array | undefined;
  /** Set by restoreSnapshot: the machine starts from the snapshot, not from a kernel. */
  private restored = false;
  /** A lazy restore's page server, kept until the machine closes. */
  private lazyMemory: LazyMemory | undefined;

  constructor(private readonly options: MachineOptions) {
    this.name = options.name ?? "vm";
    this.logger = options.logger ?? new StderrLogger(options.debug ?? false);
    this.cpus = options.cpus ?? 1;
    this.memoryMap = buildMemoryMap(memoryMiB(options), { firmware: options.firmware !== undefined });
    if (!Number.isInteger(this.cpus) || this.cpus < 1) throw new ConfigurationError(`cpus must be a positive integer (got ${this.cpus})`);
    this.vcpuThreads = options.vcpuThreads === undefined ? this.cpus > 1 : options.vcpuThreads !== false;
    const kvm = openKvm();
    this.kvm = kvm.kvm;
    if (this.cpus > kvm.maxVcpus) {
      kvm.kvm.close();
      throw new ConfigurationError(`${this.cpus} vCPUs asked for, but this host's KVM allows at most ${kvm.maxVcpus}`);
    }
    this.vm = this.kvm.createVm();
    try {
      // One memslot per block; JS sees a block above 4 GiB as several regions (one ArrayBuffer per chunk).
      const regions = this.memoryMap.ram.flatMap((block, slot) => {
        const ram = this.vm.allocateRam(block.size);
        for (const r of ramSlots(block, slot, ram, options.firmware !== undefined)) this.vm.setMemoryRegion(r);
        return ram.regions(block.gpa);
      });
      this.memory = new GuestMemory(regions);
      this.vm.setTssAddr(Layout.kvmTss);
      this.vm.setIdentityMapAddr(Layout.kvmIdentityMap);
      this.vm.createIrqchip();
      this.vm.createPit2();

      this.pio = createPortIoSpace();
      this.mmio = createMmioSpace();
      if (options.debug) {
        const trace = (a: { space: string; address: number; size: number; write: boolean }) =>
          this.logger.debug(`unhandled ${a.space} ${a.write ? "write" : "read"}${a.size} at 0x${a.address.toString(16)}`);
        this.pio.trace = trace;
        this.mmio.trace = trace;
      }
      this.interrupts = new KvmInterruptController(this.vm);
      this.ioEvents = new KvmIoEvents(this.vm);
      const mapper = new KvmMemoryMapper(this.vm, FIRST_DEVICE_SLOT);
      this.msiRoutes = new MsiRouter(this.vm);
      this.loop = new RunLoop({
        pio: this.pio,
        mmio: this.mmio,
        logger: this.logger,
        maxSliceMs: options.maxSliceMs,
        trace: options.debug,
        vcpuThreads: this.vcpuThreads,
      });

      this.container = (options.container ?? rootContainer).createChildContainer();
      this.container.register(Tokens.GuestMemory, { useValue: this.memory });
      this.container.register(Tokens.PortIo, { useValue: this.pio });
      this.container.register(Tokens.Mmio, { useValue: this.mmio });
      this.container.register(Tokens.Interrupts, { useValue: this.interrupts });
      this.container.register(Tokens.IoEvents, { useValue: this.ioEvents });
      this.container.register(Tokens.MemoryMapper, { useValue: mapper });
      this.container.register(Tokens.Logger, { useValue: this.logger });

      const serial = consoleOutput(options.serial?.output);
      this.flushSerial = serial.flush;
      this.legacy = installLegacyDevices({
        pio: this.pio,
        interrupts: this.interrupts,
        serialOutput: serial.write,
        memory: { baseKiB: this.memoryMap.lowKiB, extendedBytes: this.memoryMap.extendedBytes, highBytes: this.memoryMap.highBytes },
        onReset: () => this.loop.stop({ status: 0, reason: "reset", message: "the guest reset the machine (i8042 reset line: command 0xFE or the output port)" }),
        onDebugExit: (status) => this.loop.stop({ status, reason: "debug-exit", message: `the guest wrote ${status} to the debug-exit port` }),
        onPowerOff: () => this.loop.stop({ status: 0, reason: "poweroff", message: "the guest powered off (ACPI S5)" }),
        now: options.now,
      });
      this.legacy.i8042.connectIrq(this.interrupts.line(I8042_KEYBOARD_IRQ));
      this.keyboard = new KeysymKeyboard(this.legacy.i8042.keyboard, this.logger);
      this.container.register(Tokens.Keyboard, { useValue: this.keyboard });
      this.container.register(Tokens.BootFramebuffer, { useValue: this.bootFramebuffer });
      if (options.firmware && options.kernel) {
        throw new ConfigurationError(
          `${this.name}: a kernel and firmware were both given; firmware boots from a disk (loading a kernel through fw_cfg needs QEMU's linuxboot option ROM, which vmm does not have)`,
        );
      }
      this.resetControl = new ResetControl((kind) =>
        this.loop.stop({ status: 0, reason: "reset", message: `the guest reset the machine (${kind} reset through port 0xCF9)` }),
      );
      this.hostBridge = new Q35HostBridge({
        ecam: { base: Layout.ecam.base, busCount: Layout.ecam.busCount },
        lowRamTop: this.memoryMap.ram[0]!.size,
        onEcamChange: (w) => {
          try {
            this.pci?.moveEcam(w);
          } catch (e) {
            this.logger.warn(`${this.name}: ECAM cannot move to 0x${w.base.toString(16)}: ${(e as Error).message}`);
          }
        },
        onPamChange: (segments) => this.firmwareBoot?.shadow.apply(segments),
      });
      this.pci = createPciHost({ pio: this.pio, mmio: this.mmio, interrupts: this.interrupts, logger: this.logger, msiRoutes: this.msiRoutes, hostBridge: this.hostBridge, configAddress: (inner) => this.resetControl.overlay(inner) });
      this.firmwareBoot = options.firmware
        ? new FirmwareBoot({
            image: readImage("firmware", options.firmware),
            memory: this.memory,
            mapper,
            pio: this.pio,
            mmio: this.mmio,
            bridge: this.hostBridge,
            cpus: this.cpus,
            memoryMap: this.memoryMap,
            platform: () => this.platform(),
            debugcon: options.debugcon,
            bootOrder: () => this.bootDevices.flatMap((d) => bootPath(this.pci.bus.functions(), d, (x) => this.pci.bus.parentOf(x))),
          })
        : undefined;

      const cpuid = this.kvm.supportedCpuid();
      const threadSpinUs = typeof options.vcpuThreads === "object" ? options.vcpuThreads.spinUs : undefined;
      for (let id = 0; id < this.cpus; id++) {
        const vcpu = this.vm.createVcpu(id);
        vcpu.setCpuid(patchCpuid(cpuid, id, this.cpus));
        // The PM timer's reads are answered in the run loop (Linux's TSC calibration times them); same clock, same start.
        if (this.legacy.pmTimer.onHostClock) vcpu.setPmTimer(PM_TIMER_PORT, this.legacy.pmTimer.startNs);
        this.vcpus.push(vcpu);
        this.loop.add({
          id,
          run: (dispatch, opts) => vcpu.run(dispatch, opts),
          requestStop: () => vcpu.requestStop(),
          parked: () => vcpu.getMpState() === MpState.HALTED && (vcpu.getRegs().rflags & RFLAGS_IF) === 0,
          runOnThread: (dispatch) => vcpu.runOnThread(dispatch, { spinUs: threadSpinUs }),
          blocked: this.vcpuThreads ? waitingInKernel(vcpu) : undefined,
          stopThread: () => vcpu.stopThread(),
          kick: () => vcpu.kick(),
        });
      }
    } catch (e) {
      this.release();
      throw e;
    }
  }

  /**
   * Places a PCI function (before `run`): on bus 0 by default, or as `placement` says: `behind` a bridge or root
   * port added earlier, `express` ("endpoint" below a root port, "rc-integrated" on bus 0), `device`/`function`.
   */
  /** The PCI tree as config space describes it now: bus numbers, bridge windows, what sits behind each bridge. */
  pciTopology(): PciTopologyNode[] {
    return this.pci.bus.topology();
  }

  addPciDevice(device: PciDevice, placement?: PciPlacement): void {
    if (this.state !== "created") throw new ConfigurationError(`${device.name}: PCI devices must be added before the machine runs`);
    this.pci.attach(device, placement);
  }

  /**
   * The functions firmware boots from first, in this order (fw_cfg's "bootorder", as QEMU's bootindex gives it);
   * the others follow in firmware's own order (SeaBIOS: bus order). Needs firmware; call before `run`.
   */
  setBootOrder(devices: readonly PciDevice[]): void {
    if (!this.firmwareBoot) throw new ConfigurationError(`${this.name}: a boot order needs firmware (-f); a direct boot starts the kernel`);
    if (this.state !== "created") throw new ConfigurationError(`${this.name}: the boot order must be set before the machine runs`);
    this.bootDevices = [...devices];
  }

  /** Statistics of the last run. */
  get exits(): number {
    return this.loop.exits;
  }

  /**
   * The machine's counters (`vmm run --stats`): port I/O and MMIO exits handled in userspace, MSIs injected with
   * KVM_SIGNAL_MSI (a userspace hop each) and vector deliveries that fell back to it from their irqfd.
   */
  counters(): Readonly<Record<string, number>> {
    return {
      pioExits: this.loop.pioExits,
      mmioExits: this.loop.mmioExits,
      msiSignals: this.interrupts.msiSignals,
      msiFallbacks: this.pci.msiFallbacks(),
    };
  }

  /** What the firmware tables describe (after `run` started, including PCI interrupt routes). */
  platform(): PlatformDescription {
    return {
      apicIds: Array.from({ length: this.cpus }, (_, i) => i),
      lapicAddress: Layout.lapic,
      ioapic: { id: this.cpus, address: Layout.ioapic, gsiBase: 0, pins: 24 },
      isaIrqs: [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
      pciIntx: this.pci.intxRoutes(),
      pmTimerPort: PM_TIMER_PORT,
      acpiPm: ACPI_PM_PLATFORM,
      ecam: { base: this.hostBridge.ecamWindow.base, segment: 0, startBus: 0, endBus: this.hostBridge.ecamWindow.busCount - 1 },
      pciMem32: this.firmwareBoot ? firmwarePciMem32(this.memoryMap.ram[0]!.size, this.hostBridge.ecamWindow) : undefined,
    };
  }

  /**
   * Decompresses a bzImage's kernel on the host when that needs asynchronous work (XZ); `run` does this before
   * `load`. Without it, `load` decodes gzip and LZ4 itself and leaves XZ to the guest's decompressor.
   */
  async prepare(): Promise<void> {
    const o = this.options;
    if (this.restored || this.loaded || this.vmlinux || o.kernel?.kind !== "bzimage" || o.decompress === "guest") return;
    this.vmlinux = await decompressPayloadAsync(readImage("kernel", o.kernel));
  }

  /** Loads the kernel and firmware tables (done by `run`; exposed for inspection). */
  load(): LoadedImage {
    if (this.loaded) return this.loaded;
    const o = this.options;
    if (this.firmwareBoot) return this.loadFirmware();
    if (!o.kernel) throw new ConfigurationError(`${this.name}: give a kernel or firmware`);
    const image = readImage("kernel", o.kernel);
    let loaded: LoadedImage;
    switch (o.kernel.kind) {
      case "raw":
        loaded = loadRaw(this.memory, image);
        break;
      case "elf":
      case "elf64":
        loaded = loadElf(this.memory, image);
        break;
      case "bzimage":
        loaded = loadBzImage(this.memory, image, {
          cmdline: o.cmdline ?? "console=ttyS0",
          initrd: o.initrd ? readImage("initrd", o.initrd) : undefined,
          e820: this.memoryMap.e820,
          decompress: o.decompress,
          vmlinux: this.vmlinux,
          screenInfo: this.bootFramebuffer.screenInfo(),
        });
        break;
      default:
        throw new ConfigurationError(`unknown kernel kind '${String(o.kernel.kind)}' (raw, elf or bzimage)`);
    }
    if (o.cmdline && o.kernel.kind !== "bzimage") this.logger.warn(`${this.name}: a command line is only passed to bzImage kernels; ignored`);
    if (loaded.note) this.logger.debug(`${this.name}: ${loaded.note}`);
    writeFirmwareTables(this.memory, this.platform());
    this.vcpus.forEach((vcpu, i) => {
      const entry = i === 0 ? loaded.entry : loaded.apEntry;
      if (!entry) return; // the guest starts this CPU with INIT/SIPI
      vcpu.setSregs(entry.sregs);
      vcpu.setRegs(entry.regs);
      if (i > 0) vcpu.setMpState(MpState.RUNNABLE);
    });
    this.loaded = loaded;
    return loaded;
  }

  /** Runs the guest until it exits, resets, fails or `stop` is called. */
  async run(): Promise<MachineResult> {
    if (this.state !== "created") throw new ConfigurationError(`${this.name}: a machine runs once`);
    if (!this.restored) {
      await this.prepare();
      this.load();
    }
    this.state = "running";
    const stopInput = feedConsoleInput(this.legacy.uart, this.options.serial, this.options.console);
    try {
      return await this.loop.run();
    } finally {
      stopInput();
      this.flushSerial();
      this.state = "done";
    }
  }

  /**
   * Stops running the vCPUs, keeping all their state (registers, memory, devices), until `resume()`; the run loop
   * waits without spinning. The in-kernel clocks (PIT, LAPIC timers, kvmclock) keep counting while paused. False
   * when the machine is not running or is already paused.
   */
  pause(): boolean {
    return this.state === "running" && this.loop.pause();
  }

  /** Runs a paused machine's vCPUs again; false when it was not paused. */
  resume(): boolean {
    return this.loop.resume();
  }

  /**
   * Every vCPU's registers now (`vmm debug`): general-purpose, segments, descriptor tables, control registers and
   * MP state. Read between run slices (vCPUs run on this thread), so the values are those the vCPU left KVM_RUN
   * with; pause first for a snapshot that does not move. Empty before the vCPUs exist or after close().
   */
  vcpuStates(): VcpuState[] {
    if (this.state === "closed") return [];
    // With vcpuThreads a vCPU inside KVM_RUN holds its fd (a halted one for good): read them paused for a moment.
    const pausedHere = this.vcpuThreads && this.pause();
    try {
      return this.vcpus.map((vcpu, id) => describeVcpu(id, vcpu.getMpState(), vcpu.getRegs(), vcpu.getSregs()));
    } finally {
      if (pausedHere) this.resume();
    }
  }

  /**
   * Writes a snapshot of the paused machine into `dir` (created, or an empty directory): devices first finish their
   * I/O in flight (`quiesce`), then the vCPUs, KVM's interrupt controllers, PIT and clock, the platform devices,
   * every PCI function and guest RAM (sparse) are saved; `extra` is recorded as it is (the cli keeps its run options
   * there). Nothing is overwritten; a failure removes what it wrote. A device without `saveState` makes it refuse
   * (SnapshotError naming it) before anything is written.
   */
  async saveSnapshot(dir: string, extra: StateValue = null): Promise<SnapshotSummary> {
    if (this.state !== "running" || !this.loop.paused) throw new SnapshotError(`${this.name}: pause the machine before taking a snapshot`);
    return saveX86Snapshot(this.snapshotParts(), dir, extra);
  }

  /**
   * Starts the machine from a snapshot instead of a kernel: call after the devices were added (the same ones, from
   * the same configuration), before `run`. Guest RAM is read whole ("eager") or served from the memory file as the
   * guest touches it ("lazy", through userfaultfd: the VM runs before its memory is read).
   */
  restoreSnapshot(snapshot: LoadedSnapshot, memory: RestoreMemory = "eager"): void {
    if (this.state !== "created" || this.loaded || this.restored) throw new SnapshotError(`${this.name}: a snapshot is restored into a new machine, before it runs`);
    this.lazyMemory = restoreX86Snapshot(this.snapshotParts(), snapshot, memory, this.lazyPager);
    this.restored = true;
    // The run loop answers PM timer reads itself: it counts from the restored start.
    if (this.legacy.pmTimer.onHostClock) for (const vcpu of this.vcpus) vcpu.setPmTimer(PM_TIMER_PORT, this.legacy.pmTimer.startNs);
  }

  /** One handler thread per vCPU; a page it fails to serve stops the machine (the guest would see wrong memory). */
  private readonly lazyPager: LazyMemoryFactory = (regions) => {
    const pager = createUserfaultPager({ regions, threads: Math.max(1, this.cpus) });
    const watch = setInterval(() => {
      if (pager.stats().errors === 0) return;
      clearInterval(watch);
      this.loop.stop({ status: 1, reason: "error", message: `${this.name}: the snapshot's memory file could not be read for a page the guest touched (lazy restore); stopped` });
    }, LAZY_MEMORY_CHECK_MS);
    watch.unref();
    return {
      errors: () => pager.stats().errors,
      close: () => {
        clearInterval(watch);
        pager.close();
      },
    };
  };

  private snapshotParts(): X86SnapshotParts {
    if (this.firmwareBoot) throw new SnapshotError(`${this.name}: snapshots of firmware-booted machines are not supported yet (fw-cfg and shadow RAM state)`);
    return {
      name: this.name,
      vm: this.vm,
      vcpus: this.vcpus,
      msrIndices: () => this.kvm.msrIndexList(),
      memory: this.memory,
      dataRanges: (r) => (r.file ? fileDataRanges(r.file.fd, r.file.offset, r.bytes.length) : undefined),
      fileDataRanges,
      platform: [
        ["serial0", this.legacy.uart],
        ["i8042", this.legacy.i8042],
        ["cmos-rtc", this.legacy.rtc],
        ["acpi-pm-timer", this.legacy.pmTimer],
        ["acpi-pm", this.legacy.acpiPm],
        ["reset-control", this.resetControl],
      ],
      pci: this.pci.bus,
    };
  }

  /** Whether the machine is paused (`pause()` without `resume()` yet). */
  get paused(): boolean {
    return this.loop.paused;
  }

  /**
   * Presses the ACPI power button (a graceful shutdown request): the guest's OS sees the fixed power button event
   * and, if it acts on it, powers off through S5, ending `run()` with reason "poweroff". Returns whether the guest
   * has enabled the event (an OS without ACPI, or one still booting, never reacts). False when not running.
   */
  powerButton(): boolean {
    return this.state === "running" && this.legacy.acpiPm.powerButton();
  }

  /** Asks a running machine to stop; `run()` then resolves with reason "stopped". */
  stop(reason: string): void {
    this.loop.stop({ status: 1, reason: "stopped", message: `stopped: ${reason}` });
  }

  /** Releases KVM resources. */
  close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.release();
  }

  /** A firmware boot: vCPU 0 at the reset vector, the others waiting for INIT/SIPI; no tables in RAM (fw_cfg has them). */
  private loadFirmware(): LoadedImage {
    const loaded = this.firmwareBoot!.loaded();
    this.vcpus[0]!.setSregs(loaded.entry.sregs);
    this.vcpus[0]!.setRegs(loaded.entry.regs);
    this.logger.debug(`${this.name}: ${loaded.note}`);
    this.loaded = loaded;
    return loaded;
  }

  private release(): void {
    this.pci?.close(); // MSI and MSI-X irqfd routes, while the VM fd is still open
    this.ioEvents?.close();
    for (const v of this.vcpus) v.close?.();
    // After the vCPUs: a page they fault on must still be served until they are gone.
    this.lazyMemory?.close();
    this.vm?.close();
    this.kvm?.close();
  }
}

/**
 * The 32-bit PCI window under firmware, where SeaBIOS places BARs on a Q35 (up to the IOAPIC at 0xFEC00000): from
 * above low RAM and above an enabled ECAM window below it (QEMU's q35 declares the same hole).
 */
export function firmwarePciMem32(lowRamTop: number, ecam: { readonly enabled: boolean; readonly base: number; readonly busCount: number }): { base: number; size: number } {
  const ecamEnd = ecam.base + ecam.busCount * 0x10_0000;
  const base = ecam.enabled && ecamEnd <= Layout.ioapic ? Math.max(lowRamTop, ecamEnd) : lowRamTop;
  return { base, size: Layout.ioapic - base };
}

/**
 * A function's OpenFirmware path as QEMU writes it into "bootorder" ("/pci@i0cf8/scsi@3/disk@0,0" for a virtio-blk
 * disk); SeaBIOS matches it against "/pci@i0cf8/*@3". Behind bridges each one is a "pci-bridge@N" step
 * ("/pci@i0cf8/pci-bridge@1/scsi@0/disk@0,0"), as QEMU and SeaBIOS name them; `parentOf` gives a function's
 * bridge. Nothing for a function not on the bus.
 */
export function bootPath(
  functions: ReadonlyArray<{ address: { device: number; function: number }; device: PciDevice }>,
  device: PciDevice,
  parentOf: (device: PciDevice) => PciDevice | undefined = () => undefined,
): string[] {
  const f = functions.find((x) => x.device === device);
  if (!f) return [];
  const unit = (d: PciDevice) => {
    const a = functions.find((x) => x.device === d)!.address;
    return `${a.device.toString(16)}${a.function ? `,${a.function.toString(16)}` : ""}`;
  };
  const bridges: string[] = [];
  for (let p = parentOf(device); p; p = parentOf(p)) bridges.unshift(`pci-bridge@${unit(p)}/`);
  const baseClass = device.configRead(0x0b, 1); // mass storage (virtio-blk: 0x01), network (0x02)
  const name = baseClass === 0x01 ? "scsi" : baseClass === 0x02 ? "ethernet" : "pci";
  return [`/pci@i0cf8/${bridges.join("")}${name}@${unit(device)}${baseClass === 0x01 ? "/disk@0,0" : ""}`];
}
