// The passthrough device types, as the built-in plugin @vmm/device-vfio provides them to `vmm run --device`.
import {
  ConfigurationError,
  type DeviceContext,
  definePlugin,
  type DeviceType,
  type Logger,
  PLUGIN_API_VERSION,
  registerDeviceType,
  StderrLogger,
  Tokens,
  VmmError,
} from "@vmm/core";
import type { VfioBackend } from "./backend/backend.js";
import { createVfioPciFunction, type VfioPciFunction } from "./device/index.js";
import { KernelVfioDevice } from "./kernel/index.js";
import { registeredQuirks } from "./quirks/index.js";
import { VfioUserClient } from "./vfio-user/index.js";

export const VFIO_PLUGIN_NAME = "@vmm/device-vfio";

const mmap = {
  type: "boolean",
  default: true,
  description: "map the device's mmappable BAR areas into the guest (false: trap every access, for debugging)",
} as const;

function loggerOf(context: DeviceContext): Logger {
  return context.container.isRegistered(Tokens.Logger, true) ? context.container.resolve(Tokens.Logger) : new StderrLogger();
}

/**
 * The function over `backend`; a backend lost later (a server that died, a device that vanished) stops the VM
 * through `context.fault` with the backend's own line, or is logged where nothing can stop the VM.
 */
function passthrough(context: DeviceContext, backend: VfioBackend, options: { mmap: boolean; intxUnmask: "eventfd" | "message" }): VfioPciFunction {
  let fn: VfioPciFunction;
  try {
    fn = createVfioPciFunction(context, backend, options);
  } catch (error) {
    backend.close();
    if (error instanceof VmmError) throw error;
    throw new ConfigurationError(`${context.name}: ${backend.name}: ${(error as Error).message}`, { cause: error });
  }
  try {
    // The quirks plugins registered (Tokens.Quirk) that match this device lay their windows now.
    fn.applyQuirks(registeredQuirks(context.container));
  } catch (error) {
    fn.close(); // the backend with it; the error (a PluginError) names the quirk's plugin and the device
    throw error;
  }
  backend.onLost((reason) => {
    const error = new VmmError("EDEVICE", reason);
    if (context.fault) context.fault(error);
    else loggerOf(context).error(`${context.name}: ${reason}; the device is gone`);
  });
  return fn;
}

const deviceTypes: DeviceType[] = [
  {
    type: "vfio-user",
    description: "a PCI function served by a vfio-user device process over a UNIX socket (passthrough)",
    options: {
      socket: { type: "string", required: true, description: "the device server's UNIX socket" },
      timeout: { type: "number", integer: true, min: 10, max: 600_000, default: 5000, description: "milliseconds to wait for each reply of the server" },
      mmap,
    },
    create(context, options) {
      const client = VfioUserClient.connect(options.socket as string, { timeoutMs: options.timeout as number });
      return passthrough(context, client, { mmap: options.mmap as boolean, intxUnmask: "message" });
    },
  },
  {
    type: "vfio-pci",
    description: "a host PCI function bound to vfio-pci, passed through with kernel VFIO (needs an IOMMU)",
    options: {
      host: { type: "string", required: true, description: "the host function's address, DDDD:BB:DD.F or BB:DD.F (lspci -D)" },
      mmap,
    },
    create(context, options) {
      const memory = context.container.resolve(Tokens.GuestMemory);
      const device = KernelVfioDevice.open(options.host as string, { guestRamBytes: memory.size });
      return passthrough(context, device, { mmap: options.mmap as boolean, intxUnmask: "eventfd" });
    },
  },
];

/** The built-in plugin: `--device vfio-user,socket=PATH` and `--device vfio-pci,host=ADDR` (`--vfio-pci ADDR`). */
export const vfioPlugin = definePlugin({
  name: VFIO_PLUGIN_NAME,
  version: "0.1.0",
  apiVersion: PLUGIN_API_VERSION,
  description: "PCI passthrough: kernel VFIO and vfio-user device servers",
  register(container) {
    for (const type of deviceTypes) registerDeviceType(container, VFIO_PLUGIN_NAME, type);
  },
});
