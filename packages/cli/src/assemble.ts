import { deviceTypeSupports, PluginError, validateOptions, VmmError, type GuestArchitecture, type OptionValues, type PciDevice } from "@vmm/core";
import { rootContainer } from "./root-container.js";
import type { MachineConfig, MachineFactory, VirtualMachine } from "./arch/machine.js";
import { describe, DeviceFaultError, OptionsError } from "./errors.js";
import { guardDevice } from "./instrument.js";
import { readFileSync } from "node:fs";
import { PcieRootPort, withExpansionRom, type PciPlacement } from "@vmm/pci";
import { checkPlacements, planRootPort, ROOT_PORT_TYPE, takePlacement, type PlannedPlacement, type PlannedRootPort } from "./options/placement.js";
import { FileError, UsageError } from "./errors.js";
import { settleWithin, StoppedError } from "./settle.js";
import type { Spec } from "./options/spec.js";
import { lookupType, registerAll, type CatalogEntry } from "./plugins/catalog.js";
import type { LoadedPlugin } from "./plugins/load.js";

/** One device to create: its type, instance name and validated options. */
export interface PlannedDevice {
  readonly type: string;
  readonly plugin: string;
  /** Unique per VM: the type and a per-type index ("virtio-blk0"). */
  readonly name: string;
  readonly options: OptionValues;
  /** The options as given on the command line (shorthands expanded), before validation: what `--verbose` shows. */
  readonly given: Spec["options"];
  /** An expansion ROM image for the function (`rom=PATH`, taken by the cli for any device type). */
  readonly rom?: string;
  /** Where firmware tries the function in its boot order, lowest first (`bootindex=N`, QEMU's name, any type). */
  readonly bootindex?: number;
  /** Where the function goes on the PCI bus (`id=`, `bus=`, `addr=`, `placement=`, taken by the cli for any type). */
  readonly placement: PlannedPlacement;
  /** Set for the cli's own `pcie-root-port`: its port, slot and window reservations. */
  readonly rootPort?: PlannedRootPort;
}

/**
 * Checks every requested device against the device types the plugins provide, before any VM exists: unknown
 * types, types that do not support the guest architecture and bad options are usage errors that name the plugin,
 * the device and the option.
 */
export async function planDevices(plugins: readonly LoadedPlugin[], specs: readonly Spec[], arch: GuestArchitecture, abort?: AbortSignal): Promise<PlannedDevice[]> {
  const catalog = await registerAll(rootContainer.createChildContainer(), plugins, abort);
  const counts = new Map<string, number>();
  const planned = specs.map((spec): PlannedDevice => {
    const n = counts.get(spec.name) ?? 0;
    counts.set(spec.name, n + 1);
    const name = `${spec.name}${n}`;
    const { rom, bootindex, ...options } = spec.options;
    if (spec.name === ROOT_PORT_TYPE) {
      const placement = takePlacement(spec, options);
      if (rom !== undefined || bootindex !== undefined) throw new UsageError(`--device ${ROOT_PORT_TYPE}: a root port has no ROM and does not boot`);
      return { type: spec.name, plugin: "vmm", name, options: {}, given: spec.options, placement, rootPort: planRootPort(options) };
    }
    const entry = lookupType(catalog, spec.name);
    if (!deviceTypeSupports(entry.type, arch)) {
      throw new UsageError(`device ${name}: type ${spec.name} (plugin ${entry.plugin}) does not support ${arch} guests; it supports ${entry.type.architectures!.join(", ")}`);
    }
    const placement = takePlacement(spec, options, Object.keys(entry.type.options));
    if (rom === true || rom === "") throw new UsageError(`--device ${spec.name}: rom needs a file (rom=PATH)`);
    if (bootindex !== undefined && (bootindex === true || !/^\d{1,4}$/.test(bootindex))) {
      throw new UsageError(`--device ${spec.name}: bootindex needs a whole number (bootindex=N, lowest boots first)`);
    }
    return { type: spec.name, plugin: entry.plugin, name, options: deviceOptions(entry, name, options), given: spec.options, rom, bootindex: bootindex === undefined ? undefined : Number(bootindex), placement };
  });
  checkPlacements(planned);
  return planned;
}

function deviceOptions(entry: CatalogEntry, name: string, raw: Spec["options"]): OptionValues {
  try {
    return validateOptions(entry.type.options, raw, { plugin: entry.plugin, device: name });
  } catch (error) {
    if (error instanceof PluginError) throw new OptionsError(error);
    throw error;
  }
}

export interface AssembleOptions {
  readonly config: MachineConfig;
  readonly createMachine: MachineFactory;
  readonly plugins: readonly LoadedPlugin[];
  readonly devices: readonly PlannedDevice[];
  /** The first device fault while the guest runs. */
  readonly onFault: (fault: DeviceFaultError) => void;
  /** Fires on a signal: assembly stops, and what was built is closed. */
  readonly abort?: AbortSignal;
}

/** A VM with its devices, ready to run. `devices` are the devices as created (not the guards). */
export interface Assembly {
  readonly machine: VirtualMachine;
  readonly devices: readonly PciDevice[];
}

/**
 * Builds one VM: the machine (its own tsyringe child container with the core services), every plugin
 * registered into that container, and every planned device created from it and put on the PCI bus.
 * On failure whatever was built is closed again before the error propagates.
 */
export async function assemble(options: AssembleOptions): Promise<Assembly> {
  const machine = await options.createMachine(options.config);
  const devices: PciDevice[] = [];
  const boot: Array<{ index: number; device: PciDevice }> = [];
  try {
    if (options.abort?.aborted) throw new StoppedError(options.abort.reason);
    const catalog = await registerAll(machine.container, options.plugins, options.abort);
    const rootPorts = new Map<string, PciDevice>();
    let autoPorts = 0;
    for (const planned of options.devices) {
      const addr = planned.placement.addr;
      const at: PciPlacement = addr ? { device: addr.device, function: addr.function ?? 0 } : {};
      if (planned.rootPort) {
        const rp = new PcieRootPort({ name: planned.placement.id ?? planned.name, ...planned.rootPort });
        machine.addPciDevice(rp, at);
        rootPorts.set(planned.placement.id ?? planned.name, rp);
        continue;
      }
      const entry = catalog.get(planned.type);
      if (!entry) throw new PluginError(planned.plugin, `device type '${planned.type}' vanished between planning and assembly`);
      const created = await createDevice(entry, planned, machine, options.abort, (error) => options.onFault(new DeviceFaultError(planned.name, "its backend", error)));
      const device = planned.rom ? withExpansionRom(created, readRom(planned.rom)) : created;
      devices.push(device);
      let placement: PciPlacement = at;
      if (planned.placement.mode === "integrated") placement = { ...at, express: "rc-integrated" };
      if (planned.placement.mode === "root-port") {
        let port = planned.placement.bus !== undefined ? rootPorts.get(planned.placement.bus) : undefined;
        if (!port) {
          // placement=root-port: a root port of its own on bus 0, named after the device, with windows sized to
          // the device's BARs; the device is its device 0.
          port = new PcieRootPort({ name: `${planned.name}-rp`, port: autoPorts, slot: autoPorts, reserve: reserveFor(device) });
          autoPorts++;
          machine.addPciDevice(port, at.device !== undefined ? { device: at.device } : {});
        }
        placement = { behind: port, express: "endpoint", ...(at.function !== undefined ? { function: at.function } : {}) };
      }
      let attachFault: DeviceFaultError | undefined;
      const guarded = guardDevice(device, {
        onFault: (fault) => {
          attachFault ??= fault;
          options.onFault(fault);
        },
        trace: options.config.debug ? options.config.logger : undefined,
      });
      try {
        machine.addPciDevice(guarded, placement);
      } catch (error) {
        // The guard answers all-ones after a fault, so the bus then reports a symptom (a BAR that cannot be
        // mapped); the device's own error is the cause.
        throw attachFault ?? error;
      }
      if (attachFault) throw attachFault;
      if (planned.bootindex !== undefined) boot.push({ index: planned.bootindex, device: guarded });
    }
    if (boot.length) {
      if (!machine.setBootOrder) throw new UsageError("bootindex=: this machine takes no boot order");
      machine.setBootOrder(boot.sort((a, b) => a.index - b.index).map((b) => b.device)); // stable: ties keep command-line order
    }
    return { machine, devices };
  } catch (error) {
    await closeAll(devices, machine, () => {});
    throw error;
  }
}

/**
 * Windows for a root port of a device's own: each the next power of two over what the device's BARs need (at
 * least the bridge granule: 4 KiB I/O, 1 MiB memory), none where it has no BAR of that kind.
 */
export function reserveFor(device: PciDevice): { io: number; mem: number; pref: number } {
  // The bus allocates in BAR order, each aligned to its size: the bytes that takes.
  const sum = (pick: (b: { kind: string; size: number; prefetchable?: boolean }) => boolean) =>
    [...device.bars, ...(device.rom ? [{ kind: "rom", size: device.rom.size }] : [])]
      .filter(pick)
      .reduce((next, b) => Math.ceil(next / b.size) * b.size + b.size, 0);
  const fit = (bytes: number, granule: number) => (bytes === 0 ? 0 : Math.max(granule, 2 ** Math.ceil(Math.log2(bytes))));
  return {
    io: fit(sum((b) => b.kind === "io"), 0x1000),
    mem: fit(sum((b) => b.kind === "mem32" || b.kind === "rom" || (b.kind === "mem64" && !b.prefetchable)), 1 << 20),
    pref: fit(sum((b) => b.kind === "mem64" && b.prefetchable === true), 1 << 20),
  };
}

async function createDevice(
  entry: CatalogEntry,
  planned: PlannedDevice,
  machine: VirtualMachine,
  abort: AbortSignal | undefined,
  fault: (error: unknown) => void,
): Promise<PciDevice> {
  let faulted = false;
  const context = {
    container: machine.container,
    name: planned.name,
    fault: (error: unknown) => {
      if (faulted) return;
      faulted = true;
      fault(error);
    },
  };
  let device: PciDevice;
  try {
    device = await settleWithin(
      // Called inside the promise chain so that a synchronous throw is handled like a rejection.
      Promise.resolve().then(() => entry.type.create(context, planned.options)),
      (limit) => new Error(`create() did not finish within ${limit}`),
      abort,
    );
  } catch (error) {
    if (error instanceof VmmError || error instanceof StoppedError) throw error;
    throw new PluginError(entry.plugin, `device ${planned.name} could not be created: ${describe(error)}`, { cause: error });
  }
  const d = device as Partial<PciDevice> | undefined;
  if (!d || typeof d.configRead !== "function" || typeof d.configWrite !== "function" || !Array.isArray(d.bars) || typeof d.name !== "string") {
    throw new PluginError(entry.plugin, `device type '${planned.type}' returned something that is not a PCI device (needs name, bars, configRead, configWrite)`);
  }
  return device;
}

function readRom(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new FileError("rom", path, error);
  }
}

interface Closable {
  close?(): void | Promise<void>;
}

/**
 * Flushes and releases devices (last created first) and then the machine. A failing close is reported and
 * does not keep the others from closing.
 */
export async function closeAll(devices: readonly PciDevice[], machine: VirtualMachine, report: (problem: string) => void): Promise<void> {
  for (const device of [...devices].reverse()) {
    const close = (device as PciDevice & Closable).close;
    if (typeof close !== "function") continue;
    try {
      await settleWithin(close.call(device), (limit) => new Error(`close() did not finish within ${limit}`));
    } catch (error) {
      report(`device ${device.name} failed to close: ${describe(error)}`);
    }
  }
  try {
    await settleWithin(machine.close?.(), (limit) => new Error(`close() did not finish within ${limit}`));
  } catch (error) {
    report(`the machine failed to close: ${describe(error)}`);
  }
}
