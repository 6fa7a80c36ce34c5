import { access, constants, readFile } from "node:fs/promises";
import { StderrLogger, Tokens, type AddressSpace, type Logger } from "@vmm/core";
import { ARCHITECTURES, canonicalArch } from "../arch/index.js";
import type { MachineFactory, RunResult, VirtualMachine } from "../arch/machine.js";
import { assemble, closeAll, planDevices } from "../assemble.js";
import type { CliContext } from "../context.js";
import { AsyncFaultError, FileError, type DeviceFaultError } from "../errors.js";
import { detectKernelKind } from "../options/kernel.js";
import { buildRunConfig, type RawRunOptions, type RunConfig } from "../options/run-config.js";
import { SugarTypes } from "../options/sugar.js";
import { loadAllPlugins } from "../plugins/all.js";

/** Exit statuses for a VM stopped by a signal: 128 + the signal number, as shells report it. */
const SIGNAL_STATUS = { SIGINT: 130, SIGTERM: 143 } as const;
type StopSignal = keyof typeof SIGNAL_STATUS;

async function readInput(what: string, path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    throw new FileError(what, path, error);
  }
}

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
  | { kind: "result"; result: RunResult }
  | { kind: "signal"; signal: StopSignal }
  | { kind: "fault"; fault: DeviceFaultError }
  | { kind: "async"; error: unknown };

function stopReason(ending: Ending): string {
  if (ending.kind === "signal") return ending.signal;
  if (ending.kind === "fault") return ending.fault.message;
  return "async failure";
}

/**
 * `vmm run`: parse, check files and plugins, plan devices (all before touching KVM), assemble the VM, run it until
 * the guest stops it, a device faults or a signal arrives, then flush and close every device.
 */
export async function runCommand(raw: RawRunOptions, ctx: CliContext): Promise<number> {
  const config = buildRunConfig(raw);
  const arch = canonicalArch(config.arch);
  const kernelBytes = await readInput("kernel", config.kernel);
  const kernel = { path: config.kernel, kind: detectKernelKind(kernelBytes, config.kernel), bytes: kernelBytes };
  const initrd = config.initrd ? { path: config.initrd, bytes: await readInput("initrd", config.initrd) } : undefined;
  await checkDisks(config);
  const plugins = await loadAllPlugins(config.plugins, ctx);
  const devices = await planDevices(plugins, config.devices);
  const createMachine: MachineFactory = await (ctx.machineFactory ?? ((a: string) => ARCHITECTURES[a]!()))(arch);

  const logger = new StderrLogger(config.debug, (line) => ctx.stderr(line + "\n"));
  let vm: VirtualMachine | undefined;
  let settle: (ending: Ending) => void = () => {};
  const ended = new Promise<Ending>((resolve) => (settle = resolve));
  // Stops the machine at once: a fault is seen inside a vCPU exit, and the run loop would otherwise keep going
  // until it next yields to the event loop.
  const stop = (ending: Ending) => {
    settle(ending);
    vm?.stop?.(stopReason(ending));
  };
  let firstFault: DeviceFaultError | undefined;
  const onFault = (fault: DeviceFaultError) => {
    firstFault ??= fault;
    stop({ kind: "fault", fault });
  };

  const { machine, devices: created } = await assemble({
    config: {
      name: config.name,
      memory: config.memory,
      cpus: config.cpus,
      kernel,
      initrd,
      params: config.params,
      console: config.console,
      debug: config.debug,
      logger,
    },
    createMachine,
    plugins,
    devices,
    onFault,
  });
  vm = machine;
  logger.debug(`${config.name}: ${arch}, ${kernel.kind} kernel ${kernel.path}, devices: ${devices.map((d) => d.name).join(", ") || "none"}`);
  if (config.debug) traceUnhandled(machine, logger);

  const signals = ctx.signals ?? process;
  const handlers: Array<readonly [string, (...args: unknown[]) => void]> = [
    ...(Object.keys(SIGNAL_STATUS) as StopSignal[]).map((signal) => [signal, () => stop({ kind: "signal", signal })] as const),
    // While the VM runs, a stray exception of a device's asynchronous work stops it cleanly instead of crashing.
    ...(["uncaughtException", "unhandledRejection"] as const).map((event) => [event, (error: unknown) => stop({ kind: "async", error })] as const),
  ];
  for (const [event, handler] of handlers) signals.on(event, handler);
  let ending: Ending;
  try {
    const running = machine.run().then((result): Ending => ({ kind: "result", result }));
    const first = await Promise.race([running, ended]);
    // An ending seen before the machine ran (a fault while devices were attached) stops it now.
    if (first.kind !== "result") machine.stop?.(stopReason(first));
    ending = first;
    // A machine that can stop is waited for, so that no vCPU runs while devices close.
    if (first.kind !== "result" && machine.stop) await running.catch(() => undefined);
  } finally {
    for (const [signal, handler] of handlers) signals.off(signal, handler);
    await closeAll(created, machine, (problem) => logger.error(problem));
  }
  // A fault seen while the guest ran wins over however the machine then reported the stop.
  const fault = firstFault ?? (ending.kind === "fault" ? ending.fault : undefined);
  if (fault) {
    logger.error(fault.message);
    return 1;
  }
  if (ending.kind === "signal") {
    logger.info(`${config.name}: stopped by ${ending.signal}`);
    return SIGNAL_STATUS[ending.signal];
  }
  if (ending.kind === "async") throw new AsyncFaultError(ending.error);
  if (ending.kind !== "result") throw new Error("unreachable");
  const { result } = ending;
  if (result.status !== 0) logger.error(`${config.name}: ${result.message ?? result.reason} (exit status ${result.status})`);
  else logger.debug(`${config.name}: ${result.reason}${result.message ? `: ${result.message}` : ""}`);
  return result.status;
}
