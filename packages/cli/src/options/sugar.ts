import { UsageError } from "../errors.js";
import { parseSpec, type Spec } from "./spec.js";

/**
 * The shorthand options expand into device specs of the built-in virtio devices, so that they go through the same
 * path (type lookup, option validation, creation) as `--device`. The option names below are the virtio
 * device types' schemas (see packages/device-virtio).
 */
export const SugarTypes = {
  disk: "virtio-blk",
  network: "virtio-net",
  rng: "virtio-rng",
  console: "virtio-console",
  vfioPci: "vfio-pci",
} as const;

const DISK_FLAGS: Record<string, Record<string, string | true>> = { ro: { readonly: true }, readonly: { readonly: true } };

/** `-d PATH[,ro][,bootindex=N]` → `virtio-blk,path=PATH[,readonly][,bootindex=N]`. */
export function expandDisk(text: string): Spec {
  const { name: path, options } = parseSpec(text, "--disk");
  const out: Record<string, string | true> = { path };
  for (const [flag, value] of Object.entries(options)) {
    if (flag === "bootindex") {
      out.bootindex = value; // the cli's own option for any device (see planDevices)
      continue;
    }
    const mapped = DISK_FLAGS[flag];
    if (!mapped || value !== true) {
      throw new UsageError(`--disk '${text}': unknown disk flag '${flag}${value === true ? "" : "=" + value}' (known: ro), and bootindex=N`);
    }
    Object.assign(out, mapped);
  }
  return { name: SugarTypes.disk, options: out };
}

export const NETWORK_MODES = ["tap", "socket", "dgram", "passt", "user", "none"] as const;
export type NetworkMode = (typeof NETWORK_MODES)[number];

/**
 * `-n MODE[,key=value...]` (or kvmtool's `mode=MODE,...`) → `virtio-net,mode=MODE,key=value...`;
 * `none` gives no device.
 */
export function expandNetwork(text: string): Spec | undefined {
  const spec = parseSpec(text.includes("=") && text.trim().startsWith("mode=") ? `_,${text}` : text, "--network");
  const options = { ...spec.options };
  let mode = spec.name;
  if (mode === "_") {
    mode = String(options.mode);
    delete options.mode;
  } else if (Object.hasOwn(options, "mode")) {
    throw new UsageError(`--network '${text}': the mode is given twice`);
  }
  if (!(NETWORK_MODES as readonly string[]).includes(mode)) {
    throw new UsageError(`--network '${text}': unknown mode '${mode}' (known: ${NETWORK_MODES.join(", ")})`);
  }
  if (mode === "none") {
    if (Object.keys(options).length) throw new UsageError(`--network '${text}': mode none takes no options`);
    return undefined;
  }
  return { name: SugarTypes.network, options: { mode, ...options } };
}

export const CONSOLES = ["serial", "virtio"] as const;
export type ConsoleKind = (typeof CONSOLES)[number];

export function parseConsole(text: string): ConsoleKind {
  if (!(CONSOLES as readonly string[]).includes(text)) {
    throw new UsageError(`--console '${text}': expected one of ${CONSOLES.join(", ")}`);
  }
  return text as ConsoleKind;
}

/** `--vfio-pci ADDR[,key=value...]` (kvmtool's option) → `vfio-pci,host=ADDR[,key=value...]`. */
export function expandVfioPci(text: string): Spec {
  const { name: host, options } = parseSpec(text, "--vfio-pci");
  if (Object.hasOwn(options, "host")) throw new UsageError(`--vfio-pci '${text}': the host address is given twice`);
  return { name: SugarTypes.vfioPci, options: { host, ...options } };
}
