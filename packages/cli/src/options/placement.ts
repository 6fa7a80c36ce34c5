import type { AppliedQuirk, OptionSchema, PciAddress, PciDevice } from "@vmm/core";
import type { PciTopologyNode } from "@vmm/pci";
import { UsageError } from "../errors.js";
import type { Spec } from "./spec.js";

/** How a device is placed on the PCI bus: QEMU's vocabulary (`id`, `bus`, `addr`) plus `placement`. */
export interface PlannedPlacement {
  /** Names the device so another can say `bus=ID` (a root port). */
  readonly id?: string;
  /** The root port (by id) the device sits behind, as a PCI Express endpoint. */
  readonly bus?: string;
  /** Device (and function) number on its bus. */
  readonly addr?: { readonly device: number; readonly function?: number };
  /**
   * `pci`: a conventional function on bus 0 (the default); `integrated`: a PCI Express root-complex integrated
   * endpoint on bus 0; `root-port`: a PCI Express endpoint behind a root port (`bus=ID`, or one of its own).
   */
  readonly mode: PlacementMode;
}

export type PlacementMode = "pci" | "integrated" | "root-port";
export const PLACEMENT_MODES: readonly PlacementMode[] = ["pci", "integrated", "root-port"];
/** The device type the cli itself provides: a PCI Express root port (QEMU's name). */
export const ROOT_PORT_TYPE = "pcie-root-port";

/** A root port's own options: QEMU's names. */
export interface PlannedRootPort {
  readonly port?: number;
  readonly slot?: number;
  readonly reserve: { io?: number; mem?: number; pref?: number };
}

/**
 * Takes the cli-level placement options (`bus`, `addr`, `placement`; `id` for a root port) out of a device's raw
 * options. A name the device type declares as its own option (`own`) stays the device's.
 */
export function takePlacement(spec: Spec, options: Record<string, string | true>, own: readonly string[] = []): PlannedPlacement {
  const what = `--device ${spec.name}`;
  const text = (key: string): string | undefined => {
    if (own.includes(key) || (key === "id" && spec.name !== ROOT_PORT_TYPE)) return undefined;
    const v = options[key];
    delete options[key];
    if (v === true || v === "") throw new UsageError(`${what}: ${key} needs a value (${key}=...)`);
    return v;
  };
  const id = text("id");
  const bus = text("bus");
  const addrText = text("addr");
  const modeText = text("placement");
  if (modeText !== undefined && !PLACEMENT_MODES.includes(modeText as PlacementMode)) {
    throw new UsageError(`${what}: placement must be one of ${PLACEMENT_MODES.join("|")}`);
  }
  let addr: PlannedPlacement["addr"];
  if (addrText !== undefined) {
    const m = /^(?:0x)?([0-9a-f]{1,2})(?:\.([0-7]))?$/i.exec(addrText);
    const device = m ? parseInt(m[1]!, 16) : NaN;
    if (!m || device > 31) throw new UsageError(`${what}: addr=${addrText} must be a device number (hex, 0-1f) with an optional .function (0-7)`);
    addr = { device, ...(m[2] !== undefined ? { function: Number(m[2]) } : {}) };
  }
  if (bus !== undefined && modeText !== undefined && modeText !== "root-port") {
    throw new UsageError(`${what}: bus=${bus} places it behind a root port; placement=${modeText} contradicts it`);
  }
  const mode: PlacementMode = bus !== undefined ? "root-port" : ((modeText as PlacementMode | undefined) ?? "pci");
  return { ...(id !== undefined ? { id } : {}), ...(bus !== undefined ? { bus } : {}), ...(addr ? { addr } : {}), mode };
}

const ROOT_PORT_OPTIONS = ["port", "chassis", "slot", "io-reserve", "mem-reserve", "pref64-reserve"];

/** `pcie-root-port,id=rp1[,addr=DD][,port=N][,slot=N][,io-reserve=SIZE][,mem-reserve=SIZE][,pref64-reserve=SIZE]`. */
export function planRootPort(options: Record<string, string | true>): PlannedRootPort {
  const what = `--device ${ROOT_PORT_TYPE}`;
  for (const key of Object.keys(options)) {
    if (!ROOT_PORT_OPTIONS.includes(key)) throw new UsageError(`${what}: unknown option '${key}' (options: id, addr, ${ROOT_PORT_OPTIONS.join(", ")})`);
  }
  const num = (key: string, max: number): number | undefined => {
    const v = options[key];
    if (v === undefined) return undefined;
    const n = typeof v === "string" && /^(0x[0-9a-f]+|\d+)$/i.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < 0 || n > max) throw new UsageError(`${what}: ${key}=${String(v)} must be an integer 0..${max}`);
    return n;
  };
  const size = (key: string): number | undefined => {
    const v = options[key];
    if (v === undefined) return undefined;
    const m = typeof v === "string" ? /^(\d+)([KMG]?)$/i.exec(v) : null;
    if (!m) throw new UsageError(`${what}: ${key}=${String(v)} must be a size (bytes, or with K, M or G)`);
    return Number(m[1]) * { "": 1, K: 1024, M: 1 << 20, G: 1 << 30 }[m[2]!.toUpperCase() as "" | "K" | "M" | "G"];
  };
  const reserve = { io: size("io-reserve"), mem: size("mem-reserve"), pref: size("pref64-reserve") };
  const port = num("port", 255);
  const slot = num("slot", 0x1fff) ?? num("chassis", 0x1fff);
  return {
    ...(port !== undefined ? { port } : {}),
    ...(slot !== undefined ? { slot } : {}),
    reserve: Object.fromEntries(Object.entries(reserve).filter(([, v]) => v !== undefined)),
  };
}

/** Cross-checks: `bus=ID` names an earlier root port, one device per root port, ids unique. */
export function checkPlacements(planned: ReadonlyArray<{ readonly type: string; readonly placement: PlannedPlacement; readonly rootPort?: PlannedRootPort }>): void {
  const ids = new Set<string>();
  for (const p of planned) {
    const id = p.placement.id;
    if (id === undefined) continue;
    if (ids.has(id)) throw new UsageError(`--device ${p.type}: id=${id} is used twice`);
    ids.add(id);
  }
  planned.forEach((p, i) => {
    const bus = p.placement.bus;
    if (p.rootPort && (bus !== undefined || p.placement.mode !== "pci")) {
      throw new UsageError(`--device ${ROOT_PORT_TYPE}: a root port sits on bus 0 (no bus= or placement=)`);
    }
    if (bus === undefined) return;
    const at = planned.findIndex((q) => q.placement.id === bus);
    if (at < 0 || !planned[at]!.rootPort) throw new UsageError(`--device ${p.type}: bus=${bus} names no ${ROOT_PORT_TYPE} (give one id=${bus})`);
    if (at > i) throw new UsageError(`--device ${p.type}: bus=${bus} must come after the ${ROOT_PORT_TYPE} it names`);
    if (planned.some((q, j) => j < i && q.placement.bus === bus)) {
      throw new UsageError(`--device ${p.type}: ${ROOT_PORT_TYPE} ${bus} already has a device (a PCI Express link has one)`);
    }
  });
}

/** What `vmm devices` shows for the cli's own `pcie-root-port` type. */
export const ROOT_PORT_SCHEMA: OptionSchema = {
  id: { type: "string", required: true, description: "the name devices give as bus=ID" },
  addr: { type: "string", description: "device number on bus 0 (hex DD)" },
  port: { type: "number", integer: true, min: 0, max: 255, default: 0, description: "port number (Link Capabilities)" },
  slot: { type: "number", integer: true, min: 0, max: 0x1fff, default: 0, description: "physical slot number (Slot Capabilities; chassis= also works)" },
  "io-reserve": { type: "size", default: 0x1000, description: "I/O window set aside before the guest runs (0: none)" },
  "mem-reserve": { type: "size", default: 8 << 20, description: "memory window set aside before the guest runs" },
  "pref64-reserve": { type: "size", default: 256 << 20, description: "64-bit prefetchable window set aside before the guest runs" },
};

/** The placement options every device takes (unless its type declares an option of that name itself). */
export const PLACEMENT_SCHEMA: OptionSchema = {
  placement: { type: "enum", values: PLACEMENT_MODES, default: "pci", description: "pci: conventional on bus 0; integrated: PCIe RC integrated endpoint on bus 0; root-port: PCIe endpoint behind a root port of its own" },
  bus: { type: "string", description: "the pcie-root-port (id=) to sit behind, as a PCIe endpoint" },
  addr: { type: "string", description: "device[.function] number on its bus (hex DD[.F])" },
};

/** One BAR as config space holds it now (before the guest runs: where the bus placed it). */
export interface PciTreeBar {
  readonly index: number;
  readonly kind: "io" | "mem32" | "mem64";
  readonly address: number;
  readonly size: number;
  readonly prefetchable: boolean;
}

/**
 * A function of the PCI tree with what `vmm devices` adds to the bus's topology: `kind` ("pcie" or "pci"), the
 * PCI Express device/port type its PCI Express capability reports ("root-port", "endpoint", "rc-integrated", ...;
 * absent without one), its BARs, and the plugin quirks applied to it (passthrough devices; absent when none).
 */
export interface PciTreeNode extends Omit<PciTopologyNode, "children"> {
  readonly kind: "pcie" | "pci";
  readonly expressType?: string;
  readonly bars: readonly PciTreeBar[];
  readonly quirks?: readonly AppliedQuirk[];
  readonly children: readonly PciTreeNode[];
}

/**
 * The PCI tree as text, one line per function: "00:01.0 rp1 pcie [bridge 01-01 io 7000-7fff mem c0000000-c07fffff]",
 * with what sits behind a bridge under it ("└─ 01:00.0 virtio-blk0 pcie"). Nodes of a PciTreeNode tree also say
 * "pci" for conventional functions, their PCI Express type, their BARs ("bar0 mem32 febd0000/4K") and the quirks
 * applied to them ("[quirk rtl8168-msix-back-door from @x/device-rtl8168-quirk]").
 */
export function formatTopology(nodes: readonly (PciTopologyNode | PciTreeNode)[], prefix = "", top = true): string[] {
  const hex = (n: number, w: number) => n.toString(16).padStart(w, "0");
  const range = (what: string, r?: { base: number; limit: number }) => (r ? ` ${what} ${r.base.toString(16)}-${r.limit.toString(16)}` : "");
  return nodes.flatMap((n, i) => {
    const a = n.address;
    const b = n.bridge;
    const last = i === nodes.length - 1;
    const bridge = b ? ` [bridge ${hex(b.secondary, 2)}-${hex(b.subordinate, 2)}${range("io", b.io)}${range("mem", b.mem)}${range("pref", b.pref)}]` : "";
    const marker = top ? "" : last ? "└─ " : "├─ ";
    const kind = "kind" in n ? ` ${n.kind}${n.expressType ? ` ${n.expressType}` : ""}` : n.express ? " pcie" : "";
    const bars = "bars" in n && n.bars.length ? ` ${n.bars.map(formatBar).join(" ")}` : "";
    const quirks = "quirks" in n && n.quirks ? n.quirks.map((q) => ` [quirk ${q.name} from ${q.plugin}]`).join("") : "";
    const self = `${prefix}${marker}${hex(a.bus, 2)}:${hex(a.device, 2)}.${a.function} ${n.name}${kind}${bridge}${bars}${quirks}`;
    return [self, ...formatTopology(n.children, top ? "" : prefix + (last ? "   " : "│  "), false)];
  });
}

function formatBar(bar: PciTreeBar): string {
  const size = bar.size >= 2 ** 30 && bar.size % 2 ** 30 === 0 ? `${bar.size / 2 ** 30}G` : bar.size >= 1 << 20 && bar.size % (1 << 20) === 0 ? `${bar.size / (1 << 20)}M` : bar.size >= 1024 && bar.size % 1024 === 0 ? `${bar.size / 1024}K` : String(bar.size);
  return `bar${bar.index} ${bar.kind}${bar.prefetchable ? " pref" : ""} ${bar.address.toString(16)}/${size}`;
}

/** PCI Express capability device/port types (PCIe base spec, capabilities register bits 7:4). */
const EXPRESS_TYPES: Readonly<Record<number, string>> = {
  0: "endpoint",
  1: "legacy-endpoint",
  4: "root-port",
  5: "upstream-port",
  6: "downstream-port",
  7: "pcie-to-pci-bridge",
  8: "pci-to-pcie-bridge",
  9: "rc-integrated",
  10: "rc-event-collector",
};

/** The device/port type in a function's PCI Express capability, read from its config space. */
export function expressTypeOf(device: PciDevice): string | undefined {
  if (!(device.configRead(0x06, 2) & 0x10)) return undefined; // no capabilities list
  let at = device.configRead(0x34, 1) & 0xfc;
  for (let hops = 0; at >= 0x40 && hops < 48; hops++) {
    if (device.configRead(at, 1) === 0x10) {
      const type = (device.configRead(at + 2, 2) >> 4) & 0xf;
      return EXPRESS_TYPES[type] ?? `type-${type}`;
    }
    at = device.configRead(at + 1, 1) & 0xfc;
  }
  return undefined;
}

/** A function's BARs: what it declares, at the addresses its config space holds now. */
export function barsOf(device: PciDevice): PciTreeBar[] {
  return device.bars.map((bar) => {
    const low = device.configRead(0x10 + 4 * bar.index, 4) >>> 0;
    const base = bar.kind === "io" ? (low & ~0x3) >>> 0 : (low & ~0xf) >>> 0;
    const high = bar.kind === "mem64" ? device.configRead(0x14 + 4 * bar.index, 4) >>> 0 : 0;
    return { index: bar.index, kind: bar.kind, address: high * 2 ** 32 + base, size: bar.size, prefetchable: bar.prefetchable === true };
  });
}

/**
 * The bus's topology with each function's kind, PCI Express type and BARs; `functions` (the machine's attached
 * functions) give the devices to read them from. A node without a device keeps no BARs and no type.
 */
export function pciTree(topology: readonly PciTopologyNode[], functions: ReadonlyArray<{ address: PciAddress; device: PciDevice }>): PciTreeNode[] {
  const same = (x: PciAddress, y: PciAddress) => x.bus === y.bus && x.device === y.device && x.function === y.function;
  const node = (n: PciTopologyNode): PciTreeNode => {
    const device = functions.find((f) => same(f.address, n.address))?.device;
    const expressType = device && n.express ? expressTypeOf(device) : undefined;
    const quirks = device?.quirks?.() ?? [];
    return {
      address: n.address,
      name: n.name,
      express: n.express,
      kind: n.express ? "pcie" : "pci",
      ...(expressType ? { expressType } : {}),
      ...(n.bridge ? { bridge: n.bridge } : {}),
      bars: device ? barsOf(device) : [],
      ...(quirks.length ? { quirks } : {}),
      children: n.children.map(node),
    };
  };
  return topology.map(node);
}
