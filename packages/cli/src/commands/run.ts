import { formatTopology, pciTree, type PciTreeNode } from "../options/placement.js";
import { access, constants } from "node:fs/promises";
import { StderrLogger, Tokens, type AddressSpace, type GuestArchitecture, type Logger, type PciDevice } from "@vmm/core";
import { ARCHITECTURES, canonicalArch, hostArchitecture } from "../arch/index.js";
import { describeArm64, hostRunsArm64 } from "../arch/arm64.js";
import type { MachineConfig, MachineFactory, VirtualMachineResult, VirtualMachine } from "../arch/machine.js";
import { assemble, closeAll, planDevices, type Assembly, type PlannedDevice } from "../assemble.js";
import type { CliContext } from "../context.js";
import { AsyncFaultError, describe, DeviceFaultError, FileError } from "../errors.js";
import { detectKernelKind } from "../options/kernel.js";
import { buildRunConfig, type RawRunOptions, type RunConfig } from "../options/run-config.js";
import { SugarTypes } from "../options/sugar.js";
import { loadAllPlugins } from "../plugins/all.js";
import { IdleNotice, idleNoticeSeconds, idleNoticeText } from "../idle-notice.js";
import { assemblySummary } from "../summary.js";
import { MiB, readInput } from "../input.js";
import { ControlDirUnavailable } from "../control/paths.js";
import { openVmControl, type VmControl } from "../control/vm-control.js";
import { collectStats, statsLines } from "../stats.js";
import { openRestore, type Restore } from "../snapshot/restore.js";
import { snapshotRecord } from "../snapshot/record.js";
import { cliVersion } from "./version.js";

/** Exit statuses for a VM stopped by a signal: 128 + the signal number, as shells report it. */
const SIGNAL_STATUS = { SIGHUP: 129, SIGINT: 130, SIGQUIT: 131, SIGTERM: 143 } as const;
type StopSignal = keyof typeof SIGNAL_STATUS;

/** Disk images must exist before any VM is built; writable unless given read-only. */
async function checkDisks(config: RunConfig): Promise<void> {
  for (const d of config.devices) {
    if (d.name !== SugarTypes.disk || typeof d.options.path !== "string") continue;
    const mode = d.options.readonly === true ? constants.R_OK : constants.R_OK | constants.W_OK;
    try {
      await access(d.options.path, mode);
    } catch (error) {
      throw new FileError("disk", d.options.path, error);
    }
  }
}

/** With --debug, accesses nobody handles are traced too, unless the machine already does (it traces exits). */
function traceUnhandled(machine: VirtualMachine, logger: Logger): void {
  for (const token of [Tokens.PortIo, Tokens.Mmio]) {
    if (!machine.container.isRegistered(token, true)) continue;
    const space: AddressSpace = machine.container.resolve(token);
    if (space.trace) continue;
    space.trace = (a) =>
      logger.debug(
        `${a.space}: unhandled ${a.write ? "write" : "read"} at 0x${a.address.toString(16)}/${a.size}` +
          (a.write ? ` <- 0x${a.value!.toString(16)}` : ""),
      );
  }
}

type Ending =
  | { kind: "result"; result: VirtualMachineResult }
  | { kind: "signal"; signal: StopSignal }
  /** `vmm stop` through the control socket: the same stop as SIGTERM's. */
  | { kind: "control" }
  | { kind: "fault"; fault: DeviceFaultError }
  | { kind: "async"; error: unknown };

function stopReason(ending: Ending): string {
  if (ending.kind === "signal") return ending.signal;
  if (ending.kind === "control") return "vmm stop";
  if (ending.kind === "fault") return ending.fault.message;
  return "async failure";
}

/**
 * `vmm run`: parse, check files and plugins, plan devices (all before touching KVM), assemble the VM, run it until
 * the guest stops it, a device faults or a signal arrives, then flush and close every device. Signal handlers are
 * installed first: a signal while plugins load or devices are created stops there and closes what was built.
 */
export async function runCommand(given: RawRunOptions, ctx: CliContext): Promise<number> {
  // --restore: the machine's options come from the snapshot (and its relative paths from where it was run).
  const restore = given.restore !== undefined ? await openRestore(given, ctx) : undefined;
  const raw = restore?.run ?? given;
  const config = buildRunConfig(raw);
  const arch = canonicalArch(config.arch);
  const logger = new StderrLogger(config.debug, (line) => ctx.stderr(line + "\n"));
  const abort = new AbortController();
  let vm: VirtualMachine | undefined;
  let settle: (ending: Ending) => void = () => {};
  const ended = new Promise<Ending>((resolve) => (settle = resolve));
  // Stops the machine at once: a fault is seen inside a vCPU exit, and the run loop would otherwise keep going
  // until it next yields to the event loop. Before the machine runs, it stops the assembly instead.
  let vmControl: VmControl | undefined;
  const stop = (ending: Ending) => {
    vmControl?.target.markStopping();
    settle(ending);
    abort.abort(stopReason(ending));
    vm?.stop?.(stopReason(ending));
  };

  const signals = ctx.signals ?? process;
  const handlers: Array<readonly [string, (...args: unknown[]) => void]> = [
    ...(Object.keys(SIGNAL_STATUS) as StopSignal[]).map((signal) => [signal, () => stop({ kind: "signal", signal })] as const),
    // A stray exception of a device's asynchronous work stops the VM cleanly instead of crashing.
    ...(["uncaughtException", "unhandledRejection"] as const).map((event) => [event, (error: unknown) => stop({ kind: "async", error })] as const),
  ];
  for (const [event, handler] of handlers) signals.on(event, handler);
  try {
    if (config.dumpDtb && arch === "arm64" && !hostRunsArm64()) return await dumpDevicetreeOnly(config, arch, ctx, logger, abort.signal);
    // The name is claimed before anything is built: a second `vmm run --name X` stops here. Without a usable
    // socket directory (no writable HOME or XDG_RUNTIME_DIR) the VM still runs, unseen by vmm list and vmm stop.
    try {
      vmControl = await openVmControl({ name: config.name, arch, memory: config.memory, cpus: config.cpus }, () => stop({ kind: "control" }), logger);
    } catch (error) {
      if (!(error instanceof ControlDirUnavailable)) throw error;
      logger.warn(`${error.message}: this VM has no control socket (vmm list, pause and stop do not see it)`);
    }
    const target = vmControl?.target;
    return await runVm(config, arch, ctx, logger, {
      abort: abort.signal,
      ended,
      stop,
      setVm: (m) => (vm = m),
      attach: (m, d, plugins) => target?.attach(m, d, snapshotRecord(cliVersion(), plugins, raw, process.cwd())),
      detach: () => target?.detach(),
      restore,
    });
  } finally {
    for (const [signal, handler] of handlers) signals.off(signal, handler);
    await vmControl?.close();
  }
}

interface Control {
  readonly abort: AbortSignal;
  /** Settles with the first signal, fault or asynchronous failure. */
  readonly ended: Promise<Ending>;
  readonly stop: (ending: Ending) => void;
  readonly setVm: (vm: VirtualMachine) => void;
  /** The control socket answers for this machine and its devices while it runs (detach: it ended). */
  readonly attach?: (vm: VirtualMachine, devices: readonly PciDevice[], plugins: ReadonlyArray<{ name: string; version: string }>) => void;
  /** Start from this snapshot instead of the kernel (the first machine only: a --reboot boots the kernel). */
  readonly restore?: Restore;
  readonly detach?: () => void;
}

/** A machine assembled from a run configuration (not yet run), with what it was built from. */
export interface ConfiguredAssembly {
  readonly assembly: Assembly;
  /** The plugins loaded for it (built-in and given), with their versions. */
  readonly plugins: ReadonlyArray<{ readonly name: string; readonly version: string }>;
  readonly kernel: MachineConfig["kernel"];
  readonly devices: readonly PlannedDevice[];
}

/**
 * What `vmm run` and `vmm devices` share: read the kernel, firmware and initrd the configuration names (none needed),
 * check disks, load plugins, plan the devices (all before touching KVM), then create the machine and assemble it.
 * Nothing runs; the caller closes the assembly (`closeAll`).
 */
export async function assembleFromConfig(
  config: RunConfig,
  arch: GuestArchitecture,
  ctx: CliContext,
  logger: Logger,
  control: { readonly abort?: AbortSignal; readonly onFault: (fault: DeviceFaultError) => void },
): Promise<ConfiguredAssembly> {
  const prepared = await prepareMachine(config, arch, ctx, logger, control.abort);
  const createMachine: MachineFactory = await (ctx.machineFactory ?? ((a: GuestArchitecture) => ARCHITECTURES[a]()))(arch);
  control.abort?.throwIfAborted();
  const assembly = await assemble({
    config: prepared.machine,
    createMachine,
    plugins: prepared.plugins,
    devices: prepared.devices,
    onFault: control.onFault,
    abort: control.abort,
  });
  return { assembly, kernel: prepared.machine.kernel, devices: prepared.devices, plugins: prepared.plugins.map((p) => ({ name: p.plugin.name, version: p.plugin.version })) };
}

/** What a machine is built from, checked: the boot files read, the plugins loaded, every device planned. */
interface PreparedMachine {
  readonly machine: MachineConfig;
  readonly plugins: Awaited<ReturnType<typeof loadAllPlugins>>;
  readonly devices: readonly PlannedDevice[];
}

/**
 * Reads the kernel, firmware and initrd the configuration names (none needed), checks disks, loads plugins and
 * plans the devices: everything before a machine is created, and all that --dump-dtb needs on a host that cannot
 * run the guest.
 */
async function prepareMachine(config: RunConfig, arch: GuestArchitecture, ctx: CliContext, logger: Logger, abort?: AbortSignal): Promise<PreparedMachine> {
  let kernel: MachineConfig["kernel"];
  if (config.kernel) {
    const kernelBytes = await readInput("kernel", config.kernel, config.memory);
    kernel = { path: config.kernel, kind: detectKernelKind(kernelBytes, config.kernel, arch), bytes: kernelBytes };
  }
  const firmware = config.firmware ? { path: config.firmware, bytes: await readInput("firmware", config.firmware, 16 * MiB) } : undefined;
  const initrd = config.initrd ? { path: config.initrd, bytes: await readInput("initrd", config.initrd, config.memory) } : undefined;
  await checkDisks(config);
  abort?.throwIfAborted();
  const plugins = await loadAllPlugins(config.plugins, ctx, abort, config.devices);
  const devices = await planDevices(plugins, config.devices, arch, abort);
  const machine: MachineConfig = {
    name: config.name,
    arch,
    memBase: config.memBase,
    irqchip: config.irqchip,
    dumpDtb: config.dumpDtb,
    memory: config.memory,
    cpus: config.cpus,
    vcpuThreads: config.vcpuThreads,
    kernel,
    firmware,
    debugcon: config.debugcon,
    initrd,
    params: config.params,
    console: config.console,
    debug: config.debug,
    logger,
  };
  return { machine, plugins, devices };
}

/**
 * `--dump-dtb FILE` where this host cannot run the guest: the machine is prepared as for a run (files, plugins,
 * devices all checked), its devicetree written, and vmm exits 0 without starting it.
 */
async function dumpDevicetreeOnly(config: RunConfig, arch: GuestArchitecture, ctx: CliContext, logger: Logger, abort: AbortSignal): Promise<number> {
  const { machine } = await prepareMachine(config, arch, ctx, logger, abort);
  const { dtb } = await describeArm64(machine);
  logger.info(`${config.name}: wrote the ${arch} devicetree (${dtb.length} bytes) to ${config.dumpDtb}; this ${hostArchitecture() ?? process.arch} host does not run ${arch} guests, so the VM was not started`);
  return 0;
}

/** The machine's PCI tree with each function's kind, PCI Express type and BARs (nothing when it has no PCI tree). */
export function machinePciTree(machine: VirtualMachine): PciTreeNode[] | undefined {
  const topology = machine.pciTopology?.();
  return topology && pciTree(topology, machine.pciFunctions?.() ?? []);
}

async function runVm(config: RunConfig, arch: GuestArchitecture, ctx: CliContext, logger: Logger, control: Control): Promise<number> {
  let firstFault: DeviceFaultError | undefined;
  const onFault = (fault: DeviceFaultError) => {
    firstFault ??= fault;
    control.stop({ kind: "fault", fault });
  };

  let assembly: Assembly;
  let kernel: MachineConfig["kernel"];
  let devices: readonly PlannedDevice[];
  let plugins: ConfiguredAssembly["plugins"];
  try {
    ({ assembly, kernel, devices, plugins } = await assembleFromConfig(config, arch, ctx, logger, { abort: control.abort, onFault }));
  } catch (error) {
    // A signal (or a stray asynchronous failure) before the guest ran: assemble closed what it had built.
    if (control.abort.aborted && !(error instanceof DeviceFaultError)) return finish(await control.ended, undefined, config, logger);
    throw error;
  }
  const { machine, devices: created } = assembly;
  control.setVm(machine);
  control.attach?.(machine, created, plugins);
  logger.debug(`${config.name}: ${arch}, ${kernel ? `${kernel.kind} kernel ${kernel.path}` : `firmware ${config.firmware}`}, devices: ${devices.map((d) => d.name).join(", ") || "none"}`);
  if (config.debug) traceUnhandled(machine, logger);
  const tree = config.debug || config.verbose ? machinePciTree(machine) : undefined;
  if (tree && config.debug) for (const line of formatTopology(tree)) logger.debug(`pci ${line}`);
  if (config.verbose) for (const line of assemblySummary(config, arch, kernel, tree, machine, devices)) logger.info(line);

  let ending: Ending;
  const idle = watchIdleConsole(config, ctx, logger);
  try {
    if (control.restore) control.restore.into(machine, plugins, logger);
    const running = machine.run().then((result): Ending => ({ kind: "result", result }));
    const first = await Promise.race([running, control.ended]);
    // An ending seen before the machine ran (a fault while devices were attached) stops it now.
    if (first.kind !== "result") machine.stop?.(stopReason(first));
    ending = first;
    // A machine that can stop is waited for, so that no vCPU runs while devices close.
    if (first.kind !== "result" && machine.stop) await running.catch(() => undefined);
  } finally {
    idle?.();
    if (config.stats) printStats(config.name, machine, created, logger);
    control.detach?.();
    await closeAll(created, machine, (problem) => logger.error(problem));
  }
  if (config.reboot && !firstFault && ending.kind === "result" && ending.result.reason === "reset") {
    // --reboot: a reset is a power cycle; the VM is built again from the same configuration.
    logger.info(`${config.name}: ${ending.result.message ?? "the guest reset the machine"}; starting again (--reboot)`);
    return runVm(config, arch, ctx, logger, { ...control, restore: undefined });
  }
  return finish(ending, firstFault, config, logger);
}

/**
 * `--idle-notice`: while the guest runs, says so on stderr when it has written nothing to the console for a while.
 * Returns the function that stops watching, or nothing when the notice is off.
 */
function watchIdleConsole(config: RunConfig, ctx: CliContext, logger: Logger): (() => void) | undefined {
  const seconds = idleNoticeSeconds(config.idleNotice, ctx.stderrIsTerminal === true);
  if (seconds === 0 || !ctx.watchConsole) return undefined;
  const notice = new IdleNotice(seconds * 1000, (silentMs) => logger.info(idleNoticeText(config.name, silentMs)));
  const unwatch = ctx.watchConsole(notice.output);
  return () => {
    unwatch();
    notice.stop();
  };
}

/** `--stats`: one line for the machine and one per device that keeps counters, `name: key=value ...`. */
function printStats(vmName: string, machine: VirtualMachine, devices: readonly PciDevice[], logger: Logger): void {
  const stats = collectStats(machine, devices, (problem) => logger.warn(problem));
  for (const line of statsLines(vmName, stats)) logger.info(`stats: ${line}`);
}

/** The exit status for how the run ended; a fault seen while the guest ran wins over how the machine reported it. */
function finish(ending: Ending, firstFault: DeviceFaultError | undefined, config: RunConfig, logger: Logger): number {
  const fault = firstFault ?? (ending.kind === "fault" ? ending.fault : undefined);
  if (fault) {
    logger.error(fault.message);
    return 1;
  }
  if (ending.kind === "signal") {
    logger.info(`${config.name}: stopped by ${ending.signal}`);
    return SIGNAL_STATUS[ending.signal];
  }
  if (ending.kind === "control") {
    logger.info(`${config.name}: stopped by vmm stop`);
    return SIGNAL_STATUS.SIGTERM;
  }
  if (ending.kind === "async") throw new AsyncFaultError(ending.error);
  if (ending.kind !== "result") throw new Error("unreachable");
  const { result } = ending;
  if (result.status !== 0) logger.error(`${config.name}: ${result.message ?? result.reason} (exit status ${result.status})`);
  else if (result.reason === "poweroff") logger.info(`${config.name}: the guest powered off`);
  else logger.debug(`${config.name}: ${result.reason}${result.message ? `: ${result.message}` : ""}`);
  return result.status;
}
