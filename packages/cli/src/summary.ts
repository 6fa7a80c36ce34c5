import type { PlannedDevice } from "./assemble.js";
import type { MachineConfig, VirtualMachine } from "./arch/machine.js";
import type { PciTreeNode } from "./options/placement.js";
import type { RunConfig } from "./options/run-config.js";

const MiB = 2 ** 20;
const hex = (n: number, width: number) => n.toString(16).padStart(width, "0");

/** "256 MiB", "2 GiB". */
function ramText(bytes: number): string {
  const mib = bytes / MiB;
  return mib % 1024 ? `${mib} MiB` : `${mib / 1024} GiB`;
}

/** The options a device was given on the command line (shorthands expanded), as `--device` takes them. */
function givenText(given: PlannedDevice["given"]): string {
  return Object.entries(given)
    .map(([key, value]) => (value === true ? key : `${key}=${value.replace(/,/g, "\\,")}`))
    .join(",");
}

/**
 * `--verbose`: what was assembled, before the guest runs. First the machine: `NAME: ARCH, RAM, vCPUs (whether each
 * has a thread of its own), what boots (kernel or firmware, initrd, command line), console`. Then one line per PCI
 * function, depth first as the bus numbers them: `BB:DD.F NAME [TYPE] (VVVV:DDDD) pci|pcie TYPE [behind PORT]
 * [OPTIONS]`, where TYPE and OPTIONS are the device type and options of a device given on the command line
 * (shorthands expanded) and PORT is the root port a function sits behind. Functions the machine or vmm added
 * themselves (the host bridge, root ports of `placement=root-port`) have no type.
 */
export function assemblySummary(
  config: RunConfig,
  arch: string,
  kernel: MachineConfig["kernel"],
  tree: readonly PciTreeNode[] | undefined,
  machine: VirtualMachine,
  planned: readonly PlannedDevice[],
): string[] {
  const boot = kernel ? [`${kernel.kind} kernel ${kernel.path}`] : [`firmware ${config.firmware}`];
  if (config.initrd) boot.push(`initrd ${config.initrd}`);
  if (config.params) boot.push(`params ${JSON.stringify(config.params)}`);
  const vcpus = `${config.cpus} vCPU${config.cpus === 1 ? "" : "s"}${machine.vcpuThreads ? " (a thread each)" : ""}`;
  const head = `${config.name}: ${arch}, ${ramText(config.memory)} RAM, ${vcpus}, ${boot.join(", ")}, console ${config.console}`;
  if (!tree) return [head, `${config.name}: this machine does not describe its PCI bus`];

  const byName = new Map(planned.map((p) => [p.rootPort ? (p.placement.id ?? p.name) : p.name, p]));
  const functions = machine.pciFunctions?.() ?? [];
  const same = (a: PciTreeNode["address"], b: PciTreeNode["address"]) => a.bus === b.bus && a.device === b.device && a.function === b.function;
  const line = (node: PciTreeNode, parent: PciTreeNode | undefined): string => {
    const a = node.address;
    const device = functions.find((f) => same(f.address, a))?.device;
    const plan = byName.get(node.name);
    const ids = device ? ` (${hex(device.configRead(0x00, 2), 4)}:${hex(device.configRead(0x02, 2), 4)})` : "";
    const given = plan ? givenText(plan.given) : "";
    return [
      `${hex(a.bus, 2)}:${hex(a.device, 2)}.${a.function} ${node.name}${plan ? ` ${plan.type}` : ""}${ids}`,
      `${node.kind}${node.expressType ? ` ${node.expressType}` : ""}`,
      ...(parent ? [`behind ${parent.name}`] : []),
      ...(given ? [given] : []),
    ].join(" ");
  };
  const walk = (nodes: readonly PciTreeNode[], parent?: PciTreeNode): string[] => nodes.flatMap((n) => [line(n, parent), ...walk(n.children, n)]);
  return [head, ...walk(tree)];
}
