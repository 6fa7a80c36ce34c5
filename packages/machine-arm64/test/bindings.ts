import {
  childCellWidths,
  decodeCells,
  decodeString,
  decodeStringList,
  decodeU32,
  decodeU64,
  findNode,
  getProperty,
  parseRanges,
  parseReg,
  walkNodes,
  type Devicetree,
  type FdtNode,
} from "@vmm/fdt";
import type { Arm64MemoryMap, AddressRange } from "../src/index.js";

// What Linux's devicetree bindings require of each node this machine writes, checked on a tree read back from its
// DTB. Returns the problems found (empty when the tree passes), each "path: what is wrong", so a test can also show
// that a broken tree is caught.

export interface Expected {
  readonly map: Arm64MemoryMap;
  readonly cpus: number;
  readonly bootargs?: string;
  readonly initrd?: AddressRange;
}

export interface InterruptMapEntry {
  readonly device: number;
  readonly pin: number;
  readonly parent: number;
  readonly specifier: readonly number[];
}

const u32 = (n: FdtNode, name: string) => {
  const p = getProperty(n, name);
  return p ? decodeU32(p.value) : undefined;
};
const strings = (n: FdtNode, name: string) => {
  const p = getProperty(n, name);
  return p ? decodeStringList(p.value) : [];
};
const cellsOf = (n: FdtNode, name: string) => {
  const p = getProperty(n, name);
  return p ? decodeCells(p.value) : [];
};
const regOf = (n: FdtNode, bus: FdtNode) => {
  const p = getProperty(n, "reg");
  return p ? parseReg(p.value, childCellWidths(bus)).map((r) => ({ base: Number(r.address), size: Number(r.size) })) : [];
};
const same = (a: readonly unknown[], b: readonly unknown[]) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The host bridge's interrupt-map, one entry per row (the parent's cell counts read from the parent node). */
export function parseInterruptMap(tree: Devicetree, bridge: FdtNode): InterruptMapEntry[] {
  const cells = cellsOf(bridge, "interrupt-map");
  const childAddress = u32(bridge, "#address-cells")!;
  const childInterrupt = u32(bridge, "#interrupt-cells")!;
  const phandles = phandleTable(tree);
  const out: InterruptMapEntry[] = [];
  for (let i = 0; i < cells.length; ) {
    const hi = cells[i]!;
    const pin = cells[i + childAddress]!;
    i += childAddress + childInterrupt;
    const parent = cells[i++]!;
    const target = phandles.get(parent);
    if (!target) throw new Error(`interrupt-map names phandle ${parent}, which no node has`);
    i += u32(target.node, "#address-cells") ?? 0;
    const n = u32(target.node, "#interrupt-cells")!;
    out.push({ device: (hi >>> 11) & 0x1f, pin, parent, specifier: cells.slice(i, i + n) });
    i += n;
  }
  return out;
}

export function phandleTable(tree: Devicetree): Map<number, { node: FdtNode; path: string }> {
  const table = new Map<number, { node: FdtNode; path: string }>();
  for (const { node, path } of walkNodes(tree.root)) {
    const ph = u32(node, "phandle");
    if (ph !== undefined) {
      if (table.has(ph)) throw new Error(`phandle ${ph} on both ${table.get(ph)!.path} and ${path}`);
      table.set(ph, { node, path });
    }
  }
  return table;
}

function overlap(a: AddressRange, b: AddressRange): boolean {
  return a.base < b.base + b.size && b.base < a.base + a.size;
}

export function checkBindings(tree: Devicetree, expected: Expected): string[] {
  const problems: string[] = [];
  const fail = (path: string, what: string) => problems.push(`${path}: ${what}`);
  const { map } = expected;
  const root = tree.root;
  let phandles: Map<number, { node: FdtNode; path: string }>;
  try {
    phandles = phandleTable(tree);
  } catch (e) {
    return [(e as Error).message];
  }

  // The root: 64-bit addresses and sizes, and an interrupt parent that is an interrupt controller.
  if (u32(root, "#address-cells") !== 2 || u32(root, "#size-cells") !== 2) fail("/", "#address-cells and #size-cells must be 2");
  if (strings(root, "compatible").length === 0) fail("/", "no compatible");
  const intParent = phandles.get(u32(root, "interrupt-parent") ?? -1);
  if (!intParent || !getProperty(intParent.node, "interrupt-controller")) fail("/", "interrupt-parent is not an interrupt controller");

  // Every phandle reference resolves; every unit address is its first reg address (outside the PCI bus).
  for (const { node, path, parent } of walkNodes(root)) {
    for (const name of ["interrupt-parent", "msi-parent"]) {
      const ref = u32(node, name);
      if (ref !== undefined && !phandles.has(ref)) fail(path, `${name} <${ref}> resolves to no node`);
    }
    const reg = getProperty(node, "reg");
    const unit = node.name.split("@")[1];
    if (parent && reg && getProperty(parent, "device_type") === undefined) {
      const first = parseReg(reg.value, childCellWidths(parent))[0];
      if (unit !== first?.address.toString(16)) fail(path, `unit address "${unit}" is not reg's first address ${first?.address.toString(16)}`);
    } else if (unit !== undefined && !reg) fail(path, "unit address without reg");
    if (getProperty(node, "linux,pci-probe-only")) fail(path, "linux,pci-probe-only: BARs are reassignable");
  }

  // /cpus: one cpu node per vCPU, PSCI enable method, unique MPIDRs; /psci with HVC.
  const cpus = findNode(root, "/cpus");
  if (!cpus || u32(cpus, "#address-cells") !== 1 || u32(cpus, "#size-cells") !== 0) fail("/cpus", "missing, or cells not 1/0");
  const cpuNodes = cpus?.children.filter((c) => u32(c, "reg") !== undefined && strings(c, "device_type")[0] === "cpu") ?? [];
  if (cpuNodes.length !== expected.cpus) fail("/cpus", `${cpuNodes.length} cpu nodes for ${expected.cpus} vCPUs`);
  if (new Set(cpuNodes.map((c) => u32(c, "reg"))).size !== cpuNodes.length) fail("/cpus", "duplicate MPIDRs");
  for (const c of cpuNodes) if (strings(c, "enable-method")[0] !== "psci") fail(`/cpus/${c.name}`, "enable-method is not psci");
  const psci = findNode(root, "/psci");
  if (!psci || !strings(psci, "compatible").includes("arm,psci-0.2") || strings(psci, "method")[0] !== "hvc") fail("/psci", "needs arm,psci-0.2 (or later) with method hvc");

  // /memory: exactly RAM.
  const memories = root.children.filter((c) => strings(c, "device_type")[0] === "memory");
  const ramReg = memories.length === 1 ? parseReg(getProperty(memories[0]!, "reg")!.value, childCellWidths(root)) : [];
  if (!same(ramReg.map((r) => `${r.address}+${r.size}`), [`${map.ram.base}+${map.ram.size}`])) fail("/memory", "reg is not the RAM range");

  // The GIC and its MSI controller.
  const gicCompatible = map.gic.version === "v3" ? "arm,gic-v3" : "arm,cortex-a15-gic";
  const gics = [...walkNodes(root)].filter((e) => strings(e.node, "compatible").includes(gicCompatible));
  const gic = gics[0];
  const deviceRanges: (AddressRange & { what: string })[] = [];
  if (gics.length !== 1 || !gic) fail("/", `expected one ${gicCompatible} node`);
  else {
    if (u32(gic.node, "#interrupt-cells") !== 3 || !getProperty(gic.node, "interrupt-controller")) fail(gic.path, "needs #interrupt-cells = 3 and interrupt-controller");
    if (u32(gic.node, "#address-cells") === undefined) fail(gic.path, "an interrupt-map parent needs #address-cells");
    const regs = regOf(gic.node, root);
    const want = map.gic.version === "v3" ? [map.gic.distributor, map.gic.redistributors!] : [map.gic.distributor, map.gic.cpuInterface!];
    if (!same(regs.map((r) => `${r.base}+${r.size}`), want.map((r) => `${r.base}+${r.size}`))) fail(gic.path, "reg is not the distributor and redistributor/CPU interface frames");
    if (map.gic.version === "v3" && regs[1]?.size !== expected.cpus * 0x20000) fail(gic.path, "redistributor region is not 128 KiB per vCPU");
    deviceRanges.push(...regs.map((r) => ({ ...r, what: `${gic.path} reg` })));
    const msiCompatible = map.gic.version === "v3" ? "arm,gic-v3-its" : "arm,gic-v2m-frame";
    const msi = gic.node.children.find((c) => strings(c, "compatible").includes(msiCompatible));
    if (!msi || !getProperty(msi, "msi-controller")) fail(gic.path, `needs an ${msiCompatible} child with msi-controller`);
    else {
      if (map.gic.version === "v3" && u32(msi, "#msi-cells") !== 1) fail(`${gic.path}/${msi.name}`, "the ITS needs #msi-cells = 1");
      const [r] = regOf(msi, gic.node);
      if (!r) fail(`${gic.path}/${msi.name}`, "no reg");
      else deviceRanges.push({ ...r, what: `${gic.path}/${msi.name} reg` });
      if (getProperty(gic.node, "ranges")?.value.length !== 0) fail(gic.path, "the MSI controller's reg needs an identity ranges on the GIC");
    }
  }

  // The architected timer: four level PPIs (13, 14, 11, 10).
  const timer = [...walkNodes(root)].find((e) => strings(e.node, "compatible").includes("arm,armv8-timer"));
  const timerIrqs = timer ? cellsOf(timer.node, "interrupts") : [];
  if (!same(timerIrqs.filter((_, i) => i % 3 !== 2), [1, 13, 1, 14, 1, 11, 1, 10])) fail("/timer", "interrupts are not PPIs 13, 14, 11, 10");
  if (!timerIrqs.filter((_, i) => i % 3 === 2).every((f) => (f & 0xf) === 4)) fail("/timer", "timer PPIs must be level-high");

  // The UART: ns16550a with a clock, an SPI, inside its window and out of the PCI I/O window.
  const uart = [...walkNodes(root)].find((e) => strings(e.node, "compatible").includes("ns16550a"));
  if (!uart) fail("/", "no ns16550a");
  else {
    if (!u32(uart.node, "clock-frequency")) fail(uart.path, "no clock-frequency");
    const irq = cellsOf(uart.node, "interrupts");
    if (irq.length !== 3 || irq[0] !== 0) fail(uart.path, "interrupts is not one SPI");
    const reg = regOf(uart.node, root)[0] ?? { base: -1, size: 0 };
    if (reg.base < map.uart.base || reg.base + reg.size > map.uart.base + map.uart.size) fail(uart.path, "reg outside the UART's window");
    if (overlap(reg, map.pci.io)) fail(uart.path, "the UART sits in the PCI I/O window");
    deviceRanges.push({ ...reg, what: `${uart.path} reg` });
  }

  // /chosen.
  const chosen = findNode(root, "/chosen");
  const stdout = chosen && getProperty(chosen, "stdout-path") ? decodeString(getProperty(chosen, "stdout-path")!.value) : undefined;
  if (!stdout || !uart || findNode(root, stdout.split(":")[0]!) !== uart.node) fail("/chosen", "stdout-path is not the UART");
  const bootargs = chosen && getProperty(chosen, "bootargs") ? decodeString(getProperty(chosen, "bootargs")!.value) : undefined;
  if (bootargs !== expected.bootargs) fail("/chosen", `bootargs ${JSON.stringify(bootargs)}, expected ${JSON.stringify(expected.bootargs)}`);
  const start = chosen && getProperty(chosen, "linux,initrd-start");
  const end = chosen && getProperty(chosen, "linux,initrd-end");
  const initrd = start && end ? { base: Number(decodeU64(start.value)), size: Number(decodeU64(end.value) - decodeU64(start.value)) } : undefined;
  if (JSON.stringify(initrd) !== JSON.stringify(expected.initrd)) fail("/chosen", `initrd ${JSON.stringify(initrd)}, expected ${JSON.stringify(expected.initrd)}`);

  // The ECAM host bridge.
  const bridges = [...walkNodes(root)].filter((e) => strings(e.node, "compatible").includes("pci-host-ecam-generic"));
  const pcie = bridges[0];
  if (bridges.length !== 1 || !pcie) fail("/", "expected one pci-host-ecam-generic node");
  else {
    const p = pcie.path;
    const n = pcie.node;
    if (strings(n, "device_type")[0] !== "pci") fail(p, 'device_type is not "pci"');
    if (u32(n, "#address-cells") !== 3 || u32(n, "#size-cells") !== 2 || u32(n, "#interrupt-cells") !== 1) fail(p, "cells must be 3/2 and #interrupt-cells 1");
    const busRange = cellsOf(n, "bus-range");
    const ecam = regOf(n, root)[0] ?? { base: -1, size: 0 };
    if (!same(busRange, [0, map.pci.ecam.busCount - 1])) fail(p, "bus-range does not cover the ECAM window's buses");
    if (ecam.base !== map.pci.ecam.base || ecam.size !== ((busRange[1] ?? -1) - (busRange[0] ?? 0) + 1) * 2 ** 20) {
      fail(p, "reg is not 1 MiB of ECAM per bus of bus-range at the ECAM window");
    }
    deviceRanges.push({ ...ecam, what: `${p} reg` });
    // ranges: identity windows of the right spaces, exactly the memory map's.
    const rangesProperty = getProperty(n, "ranges");
    const ranges = rangesProperty ? parseRanges(rangesProperty.value, childCellWidths(n), childCellWidths(root)) : [];
    const want = [
      { space: 1, prefetchable: false, w: map.pci.io },
      { space: 2, prefetchable: false, w: map.pci.mmio32 },
      { space: 3, prefetchable: true, w: map.pci.mmio64 },
    ];
    if (ranges.length !== want.length) fail(p, `${ranges.length} ranges, expected ${want.length}`);
    ranges.forEach((r, i) => {
      const hi = Number(r.child >> 64n);
      const bus = Number(r.child & ((1n << 64n) - 1n));
      const w = want[i];
      if (!w) return;
      if (((hi >>> 24) & 3) !== w.space || (((hi >>> 30) & 1) === 1) !== w.prefetchable || (hi & 0x00ff_ffff) !== 0) fail(p, `range ${i}: phys.hi 0x${hi.toString(16)} is not space ${w.space}`);
      if (bus !== w.w.base || Number(r.parent) !== w.w.base || Number(r.size) !== w.w.size) fail(p, `range ${i} does not match ${w.w.name}`);
      deviceRanges.push({ base: Number(r.parent), size: Number(r.size), what: `${p} range ${i}` });
    });
    // interrupt-map: one entry per slot and pin, each an SPI on the GIC; the mask keeps device and pin.
    if (!same(cellsOf(n, "interrupt-map-mask"), [0xf800, 0, 0, 7])) fail(p, "interrupt-map-mask is not <0xf800 0 0 7>");
    let entries: InterruptMapEntry[] = [];
    try {
      entries = parseInterruptMap(tree, n);
    } catch (e) {
      fail(p, `interrupt-map does not parse: ${(e as Error).message}`);
    }
    const keys = new Set(entries.map((e) => `${e.device}/${e.pin}`));
    if (keys.size !== 128 || entries.length !== 128) fail(p, `interrupt-map has ${entries.length} entries for ${keys.size} slot/pin pairs, expected 128`);
    for (const e of entries) {
      if (phandles.get(e.parent)?.node !== gic?.node) fail(p, `interrupt-map entry ${e.device}/${e.pin} does not go to the GIC`);
      if (e.specifier.length !== 3 || e.specifier[0] !== 0 || (e.specifier[2]! & 0xf) !== 4) fail(p, `interrupt-map entry ${e.device}/${e.pin} is not a level-high SPI`);
    }
    // MSIs: through the ITS (msi-map, identity RID -> DeviceID) or the v2m frame (msi-parent).
    const msiTarget = map.gic.version === "v3" ? cellsOf(n, "msi-map")[1] : u32(n, "msi-parent");
    const msiNode = msiTarget === undefined ? undefined : phandles.get(msiTarget)?.node;
    if (!msiNode || !getProperty(msiNode, "msi-controller")) fail(p, "MSIs go to no msi-controller");
    if (!getProperty(n, "dma-coherent")) fail(p, "not dma-coherent");
  }

  // Device windows: none overlaps RAM or another.
  for (const [i, a] of deviceRanges.entries()) {
    if (overlap(a, map.ram)) fail("/", `${a.what} overlaps RAM`);
    for (const b of deviceRanges.slice(i + 1)) if (overlap(a, b)) fail("/", `${a.what} overlaps ${b.what}`);
  }
  return problems;
}
