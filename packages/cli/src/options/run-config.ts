import { parseSize, type GuestArchitecture } from "@vmm/core";
import { canonicalArch, DEFAULT_ARCH } from "../arch/index.js";
import { UsageError } from "../errors.js";
import { parseCpuCount, parseMemorySize } from "./size.js";
import { parseSpec, type Spec } from "./spec.js";
import { expandDisk, expandNetwork, expandVfioPci, parseConsole, SugarTypes, type ConsoleKind } from "./sugar.js";

/** `vmm run` options as commander hands them over (strings, repeatable ones as arrays). */
export interface RawRunOptions {
  kernel?: string;
  firmware?: string;
  debugcon?: string;
  reboot?: boolean;
  vcpuThreads?: boolean;
  initrd?: string;
  params?: string;
  mem?: string;
  cpus?: string;
  disk?: string[];
  network?: string[];
  console?: string;
  rng?: boolean;
  plugin?: string[];
  device?: string[];
  vfioPci?: string[];
  arch?: string;
  memBase?: string;
  irqchip?: string;
  dumpDtb?: string;
  debug?: boolean;
  stats?: boolean;
  verbose?: boolean;
  idleNotice?: string;
  name?: string;
  /** A snapshot directory to start from instead of a kernel (`vmm snapshot` wrote it). */
  restore?: string;
  /** How a restore brings guest memory back: "eager" (read before the guest runs) or "lazy" (on demand). */
  restoreMemory?: string;
}

/** `--irqchip` (kvmtool's names): the arm64 interrupt controller and how MSIs reach it. */
export const IRQCHIPS = ["gicv3-its", "gicv3", "gicv2m", "gicv2"] as const;
export type Irqchip = (typeof IRQCHIPS)[number];

/** A fully parsed `vmm run` request: what to boot and which devices to create, in order. */
export interface RunConfig {
  readonly arch: GuestArchitecture;
  /** arm64: RAM's guest-physical base (`--mem-base`); absent: the machine's default. */
  readonly memBase?: number;
  /** arm64: the interrupt controller (`--irqchip`). */
  readonly irqchip?: Irqchip;
  /** arm64: write the generated devicetree blob here (`--dump-dtb`). */
  readonly dumpDtb?: string;
  readonly name: string;
  /** Absent when firmware boots the VM. */
  readonly kernel?: string;
  readonly firmware?: string;
  readonly debugcon?: string;
  /** A guest reset starts the VM again (else the run ends with status 0). */
  readonly reboot: boolean;
  /**
   * --vcpu-threads (true) or --no-vcpu-threads (false): each vCPU runs KVM_RUN on a host thread of its own (x86_64).
   * Absent when neither was given: the machine's default applies (x86_64: threads when there is more than one vCPU).
   */
  readonly vcpuThreads?: boolean;
  readonly initrd?: string;
  readonly params: string;
  readonly memory: number;
  readonly cpus: number;
  readonly console: ConsoleKind;
  readonly plugins: readonly Spec[];
  /** Every device to create: the shorthands' expansions first (disks, network, rng, console), then --device. */
  readonly devices: readonly Spec[];
  readonly debug: boolean;
  /** Print the machine's and every device's counters when the VM stops. */
  readonly stats: boolean;
  /** Print what was assembled (the machine, every PCI function with its address) before the guest runs. */
  readonly verbose: boolean;
  /** Seconds of console silence before vmm says the guest still runs (0: never); absent: the default for stderr. */
  readonly idleNotice?: number;
}

export const DEFAULT_MEMORY = "256";
export const DEFAULT_CPUS = "1";
export { DEFAULT_ARCH };

/** The arm64-only options, refused for other architectures with the option's name. */
function archOptions(raw: RawRunOptions, arch: GuestArchitecture): Pick<RunConfig, "memBase" | "irqchip" | "dumpDtb"> {
  const given = (["memBase", "irqchip", "dumpDtb"] as const).filter((k) => raw[k] !== undefined);
  const flag = { memBase: "--mem-base", irqchip: "--irqchip", dumpDtb: "--dump-dtb" } as const;
  if (arch !== "arm64" && given.length) {
    throw new UsageError(`${given.map((k) => flag[k]).join(", ")} ${given.length === 1 ? "applies" : "apply"} to --arch arm64 (the ${arch} machine has a fixed memory map and describes itself with ACPI)`);
  }
  let memBase: number | undefined;
  if (raw.memBase !== undefined) {
    memBase = parseSize(raw.memBase);
    if (memBase === undefined) throw new UsageError(`--mem-base '${raw.memBase}': expected an address (0x80000000, 2147483648) or a size (2G)`);
  }
  if (raw.irqchip !== undefined && !(IRQCHIPS as readonly string[]).includes(raw.irqchip)) {
    throw new UsageError(`--irqchip '${raw.irqchip}': expected one of ${IRQCHIPS.join(", ")}`);
  }
  if (raw.dumpDtb === "") throw new UsageError("--dump-dtb needs a file name");
  return { memBase, irqchip: raw.irqchip as Irqchip | undefined, dumpDtb: raw.dumpDtb };
}

/**
 * Parses `vmm run`'s options. `boot: false` (`vmm devices`, which assembles the machine without running it) needs
 * neither a kernel nor firmware.
 */
export function buildRunConfig(raw: RawRunOptions, pid = process.pid, { boot = true }: { boot?: boolean } = {}): RunConfig {
  const arch = canonicalArch(raw.arch ?? DEFAULT_ARCH);
  const archSpecific = archOptions(raw, arch);
  if (raw.firmware && arch !== "x86_64") throw new UsageError(`--firmware boots x86_64 firmware (SeaBIOS); ${arch} guests boot a kernel with -k`);
  // --dump-dtb alone writes the devicetree of the bare machine: no kernel needed.
  if (boot && !raw.kernel && !raw.firmware && !archSpecific.dumpDtb) throw new UsageError("no kernel given (use -k/--kernel FILE, or -f/--firmware FILE to boot firmware)");
  if (raw.kernel && raw.firmware) {
    throw new UsageError("-k and --firmware together are not supported: firmware boots from a disk (a kernel through fw_cfg needs QEMU's linuxboot option ROM)");
  }
  if ((raw.initrd || raw.params) && raw.firmware) throw new UsageError("-i and -p go with -k; with --firmware the guest's boot loader chooses them");
  if (raw.vcpuThreads && arch !== "x86_64") throw new UsageError(`--vcpu-threads runs x86_64 vCPUs on threads of their own; the ${arch} machine runs its vCPUs in turn`);
  const console = parseConsole(raw.console ?? "serial");
  const devices: Spec[] = [];
  for (const d of raw.disk ?? []) devices.push(expandDisk(d));
  for (const n of raw.network ?? []) {
    const spec = expandNetwork(n);
    if (spec) devices.push(spec);
  }
  if (raw.rng) devices.push({ name: SugarTypes.rng, options: {} });
  if (console === "virtio") devices.push({ name: SugarTypes.console, options: {} });
  for (const host of raw.vfioPci ?? []) devices.push(expandVfioPci(host));
  for (const d of raw.device ?? []) devices.push(parseSpec(d, "--device"));
  const booted = devices.find((d) => Object.hasOwn(d.options, "bootindex"));
  if (booted && !raw.firmware) throw new UsageError(`${booted.name}: bootindex= goes with --firmware (a direct boot starts the kernel)`);
  const name = raw.name ?? `guest-${pid}`;
  if (!/^[\w.-]{1,64}$/.test(name)) throw new UsageError(`--name '${name}': use up to 64 letters, digits, '.', '_' or '-'`);
  return {
    arch,
    ...archSpecific,
    name,
    kernel: raw.kernel,
    firmware: raw.firmware,
    debugcon: raw.debugcon,
    reboot: raw.reboot ?? false,
    vcpuThreads: raw.vcpuThreads,
    initrd: raw.initrd,
    params: raw.params ?? "",
    memory: parseMemorySize(raw.mem ?? DEFAULT_MEMORY),
    cpus: parseCpuCount(raw.cpus ?? DEFAULT_CPUS),
    console,
    plugins: (raw.plugin ?? []).map((p) => parseSpec(p, "--plugin")),
    devices,
    debug: raw.debug ?? false,
    stats: raw.stats ?? false,
    verbose: raw.verbose ?? false,
    ...(raw.idleNotice !== undefined ? { idleNotice: parseSeconds(raw.idleNotice, "--idle-notice") } : {}),
  };
}

/** A duration in seconds: a non-negative number (`10`, `0.5`); a usage error otherwise. */
export function parseSeconds(text: string, what: string): number {
  const seconds = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isFinite(seconds) || seconds > 86_400) throw new UsageError(`${what} '${text}': expected seconds, a number from 0 to 86400 (0: never)`);
  return seconds;
}
