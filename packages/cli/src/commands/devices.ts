import { deviceTypeSupports, Tokens, type DeviceQuirk, type OptionSpec, type QuirkMatch } from "@vmm/core";
import { rootContainer } from "../root-container.js";
import type { CliContext } from "../context.js";
import { StderrLogger } from "@vmm/core";
import { canonicalArch } from "../arch/index.js";
import { closeAll } from "../assemble.js";
import { UsageError, type DeviceFaultError } from "../errors.js";
import { buildRunConfig, type RawRunOptions, type RunConfig } from "../options/run-config.js";
import { assembleFromConfig, machinePciTree } from "./run.js";
import { loadAllPlugins } from "../plugins/all.js";
import { registerAll, type CatalogEntry } from "../plugins/catalog.js";
import { formatTopology, PLACEMENT_SCHEMA, ROOT_PORT_SCHEMA, ROOT_PORT_TYPE, type PciTreeNode } from "../options/placement.js";

/** The device type the cli provides itself: a PCI Express root port devices are placed behind. */
const ROOT_PORT_ENTRY: CatalogEntry = {
  type: {
    type: ROOT_PORT_TYPE,
    description: "a PCI Express root port (1b36:000c) on bus 0; other devices sit behind it with bus=ID",
    options: ROOT_PORT_SCHEMA,
    create: () => {
      throw new Error("pcie-root-port is created by vmm itself");
    },
  },
  plugin: "vmm",
  builtin: true,
};

/** `vmm devices` options: `vmm run`'s machine and device options (no kernel), `--tree` and `--json`. */
export interface RawDevicesOptions extends Omit<RawRunOptions, "kernel" | "initrd" | "params" | "debugcon" | "reboot" | "stats" | "verbose" | "idleNotice"> {
  json?: boolean;
  tree?: boolean;
}

/** "number 1..32", "one of tap|socket": the type column of an option. */
export function describeType(spec: OptionSpec): string {
  switch (spec.type) {
    case "enum":
      return `one of ${spec.values.join("|")}`;
    case "number":
    case "size": {
      const range = spec.min !== undefined || spec.max !== undefined ? ` ${spec.min ?? ""}..${spec.max ?? ""}` : "";
      return `${spec.type === "number" && spec.integer ? "integer" : spec.type}${range}`;
    }
    default:
      return spec.type;
  }
}

export function describeDefault(spec: OptionSpec): string {
  if (spec.required) return "(required)";
  if (spec.default === undefined) return "-";
  return spec.default === "" ? '""' : String(spec.default);
}

function table(rows: string[][], indent: string): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n");
}

/** "10ec:8168", with the subsystem IDs and revision where the match names them. */
function describeMatch(m: QuirkMatch): string {
  const h = (n: number, w: number) => n.toString(16).padStart(w, "0");
  const sub = m.subsystemVendorId !== undefined || m.subsystemId !== undefined ? ` subsystem ${m.subsystemVendorId === undefined ? "*" : h(m.subsystemVendorId, 4)}:${m.subsystemId === undefined ? "*" : h(m.subsystemId, 4)}` : "";
  return `${h(m.vendorId, 4)}:${h(m.deviceId, 4)}${sub}${m.revision === undefined ? "" : ` rev ${h(m.revision, 2)}`}`;
}

/** The quirks block: each quirk with its plugin and the devices it matches (nothing without quirks). */
function renderQuirks(quirks: readonly DeviceQuirk[]): string {
  if (!quirks.length) return "";
  const blocks = quirks.map((q) => {
    const matches = (Array.isArray(q.match) ? (q.match as readonly QuirkMatch[]) : [q.match as QuirkMatch]).map(describeMatch).join(", ");
    return `  ${q.name}: ${q.description}\n    from plugin ${q.plugin ?? "?"}, matches ${matches}`;
  });
  return `\nquirks, applied to matching passthrough devices (vfio-pci, vfio-user):\n${blocks.join("\n")}\n`;
}

function renderText(entries: readonly CatalogEntry[]): string {
  if (!entries.length) return "no device types (load a plugin with --plugin)\n";
  const blocks = entries.map((e) => {
    const only = e.type.architectures ? `; ${e.type.architectures.join(", ")} guests only` : "";
    const head = `${e.type.type}: ${e.type.description}\n  from plugin ${e.plugin}${e.builtin ? " (built-in)" : ""}${only}`;
    const opts = Object.entries(e.type.options);
    if (!opts.length) return `${head}\n  no options`;
    const rows = [["option", "type", "default", "description"], ...opts.map(([k, s]) => [k, describeType(s), describeDefault(s), s.description])];
    return `${head}\n${table(rows, "  ")}`;
  });
  const placement = Object.entries(PLACEMENT_SCHEMA).map(([k, s]) => [k, describeType(s), describeDefault(s), s.description]);
  const tail = `every device also takes (where its type has no option of that name):\n${table([["option", "type", "default", "description"], ...placement], "  ")}`;
  return blocks.join("\n\n") + "\n\n" + tail + "\n";
}

function renderJson(entries: readonly CatalogEntry[]): string {
  const out = entries.map((e) => ({
    type: e.type.type,
    description: e.type.description,
    plugin: e.plugin,
    builtin: e.builtin,
    ...(e.type.architectures ? { architectures: e.type.architectures } : {}),
    options: Object.entries(e.type.options).map(([name, s]) => ({ name, ...s })),
  }));
  return JSON.stringify(out, null, 2) + "\n";
}

/**
 * `vmm devices`: every device type the built-in and `--plugin` plugins provide, with its options. Given devices
 * (`--device`, `-d`, `-n`, `--rng`, `--console virtio`) or `--tree`, it assembles the machine as `vmm run` would,
 * without a kernel and without running anything, and shows the PCI tree instead.
 */
export async function devicesCommand(raw: RawDevicesOptions, ctx: CliContext): Promise<number> {
  const config = buildRunConfig(raw, undefined, { boot: false });
  if (raw.tree || config.devices.length) return treeCommand(config, raw.json === true, ctx);
  const plugins = await loadAllPlugins(config.plugins, ctx);
  const vm = rootContainer.createChildContainer();
  const catalog = await registerAll(vm, plugins);
  // With --arch, only the types a guest of that architecture can use.
  const entries = [...catalog.values(), ROOT_PORT_ENTRY]
    .filter((e) => raw.arch === undefined || deviceTypeSupports(e.type, config.arch))
    .sort((a, b) => a.type.type.localeCompare(b.type.type));
  const quirks = vm.isRegistered(Tokens.Quirk, true) ? vm.resolveAll(Tokens.Quirk) : [];
  ctx.stdout(raw.json ? renderJson(entries) : renderText(entries) + renderQuirks(quirks));
  return 0;
}

/** Assembles the machine (needs KVM), reads its PCI tree, closes everything again and prints the tree. */
async function treeCommand(config: RunConfig, json: boolean, ctx: CliContext): Promise<number> {
  const arch = canonicalArch(config.arch);
  const logger = new StderrLogger(false, (line) => ctx.stderr(line + "\n"));
  let fault: DeviceFaultError | undefined;
  // --debug shows stack traces here; the machine traces nothing (no guest runs).
  const { assembly } = await assembleFromConfig({ ...config, debug: false }, arch, ctx, logger, { onFault: (f) => (fault ??= f) });
  let tree: PciTreeNode[] | undefined;
  try {
    tree = machinePciTree(assembly.machine);
  } finally {
    await closeAll(assembly.devices, assembly.machine, (problem) => logger.error(problem));
  }
  if (fault) throw fault;
  if (!tree) throw new UsageError(`--arch ${arch}: this machine does not describe its PCI tree`);
  ctx.stdout(json ? JSON.stringify(tree.map(treeJson), null, 2) + "\n" : formatTopology(tree).join("\n") + "\n");
  return 0;
}

/** A node as `vmm devices --json` prints it: the address also as "bb:dd.f". */
function treeJson(node: PciTreeNode): object {
  const a = node.address;
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  return {
    address: `${hex(a.bus)}:${hex(a.device)}.${a.function}`,
    bus: a.bus,
    device: a.device,
    function: a.function,
    name: node.name,
    kind: node.kind,
    ...(node.expressType ? { expressType: node.expressType } : {}),
    ...(node.bridge ? { bridge: node.bridge } : {}),
    bars: node.bars,
    ...(node.quirks ? { quirks: node.quirks } : {}),
    children: node.children.map(treeJson),
  };
}
