import type { GuestArchitecture, Logger, PciAddress, PciDevice, StateValue } from "@vmm/core";
import type { PciPlacement, PciTopologyNode } from "@vmm/pci";
import type { DependencyContainer } from "tsyringe";
import type { KernelImageKind } from "../options/kernel.js";
import type { Irqchip } from "../options/run-config.js";
import type { ConsoleKind } from "../options/sugar.js";

/** What the cli asks an architecture's machine for. */
export interface MachineConfig {
  readonly name: string;
  readonly arch: GuestArchitecture;
  /** arm64: RAM's guest-physical base (--mem-base). */
  readonly memBase?: number;
  /** arm64: the interrupt controller (--irqchip). */
  readonly irqchip?: Irqchip;
  /** arm64: where to write the devicetree blob (--dump-dtb). */
  readonly dumpDtb?: string;
  /** Guest RAM in bytes. */
  readonly memory: number;
  readonly cpus: number;
  /** Each vCPU on a host thread of its own (--vcpu-threads; x86_64); absent: the machine's default. */
  readonly vcpuThreads?: boolean;
  /** Absent when firmware boots the VM. */
  readonly kernel?: { readonly path: string; readonly kind: KernelImageKind; readonly bytes: Uint8Array };
  /** Boot firmware (--firmware), mapped below 4 GiB. */
  readonly firmware?: { readonly path: string; readonly bytes: Uint8Array };
  /** Where the debug console (port 0x402) writes (--debugcon). */
  readonly debugcon?: string;
  readonly initrd?: { readonly path: string; readonly bytes: Uint8Array };
  /** The kernel command line (-p). */
  readonly params: string;
  readonly console: ConsoleKind;
  /** Trace exits (--debug). */
  readonly debug: boolean;
  readonly logger: Logger;
}

/** How a run ended: `status` is the process exit status the guest asked for (0 for shutdown/reset). */
export interface VirtualMachineResult {
  readonly status: number;
  readonly reason: string;
  readonly message?: string;
}

/** One vCPU's registers in named groups, every value as text (a 0x-hex number, or a few `key=value`s for a segment). */
export interface VcpuRegisters {
  readonly id: number;
  readonly mpState: string;
  readonly groups: ReadonlyArray<{ readonly name: string; readonly values: Readonly<Record<string, string>> }>;
}

/** One VM as the cli drives it. */
export interface VirtualMachine {
  /** The VM's tsyringe child container: core services under Tokens; plugins register here. */
  readonly container: DependencyContainer;
  /** Puts a function on the PCI bus: bus 0 by default, or as `placement` says (behind a root port, ...). */
  addPciDevice(device: PciDevice, placement?: PciPlacement): void;
  /** The PCI tree as config space describes it now (`--debug` prints it before the guest runs). */
  pciTopology?(): PciTopologyNode[];
  /** The attached functions with their addresses now (`vmm devices` reads their BARs and PCIe type from them). */
  pciFunctions?(): Array<{ address: PciAddress; device: PciDevice }>;
  /** The functions firmware boots from first, in order (from `bootindex=`); machines without firmware refuse. */
  setBootOrder?(devices: readonly PciDevice[]): void;
  run(): Promise<VirtualMachineResult>;
  /** Asks a running VM to stop (signals, device faults); run() then resolves. */
  stop?(reason: string): void;
  /**
   * Stops running the vCPUs, keeping every state, until resume() (`vmm pause`); false when already paused or not
   * running. A machine without it cannot be paused.
   */
  pause?(): boolean;
  /** Runs a paused machine's vCPUs again (`vmm resume`); false when it was not paused. */
  resume?(): boolean;
  /** Whether the machine is paused now. */
  readonly paused?: boolean;
  /** Whether each vCPU runs on a host thread of its own (absent: they take turns on the JS thread). */
  readonly vcpuThreads?: boolean;
  /** Every vCPU's registers now, as text (`vmm debug`). */
  vcpuStates?(): readonly VcpuRegisters[];
  /** The machine's counters now (exits per kind, interrupt injections): what `--stats` prints. */
  counters?(): Readonly<Record<string, number>>;
  /**
   * Presses the ACPI power button (`vmm stop`'s graceful path); true when the guest enabled the event. A machine
   * without one is stopped with `stop` only.
   */
  powerButton?(): boolean;
  /**
   * Writes a snapshot of the paused VM into `dir` (new or empty), recording `extra` with it (`vmm snapshot`). A
   * machine without it cannot be snapshotted.
   */
  saveSnapshot?(dir: string, extra: StateValue): Promise<{ readonly memoryBytes: number; readonly dataBytes: number; readonly milliseconds: number }>;
  /** Starts from a snapshot (a machine package's loadSnapshot result) instead of the kernel, before run(). */
  restoreSnapshot?(snapshot: { readonly dir: string }, memory: "eager" | "lazy"): void;
  /** Releases the VM after run() (or after a failed assembly). */
  close?(): void | Promise<void>;
}

export type MachineFactory = (config: MachineConfig) => VirtualMachine | Promise<VirtualMachine>;
