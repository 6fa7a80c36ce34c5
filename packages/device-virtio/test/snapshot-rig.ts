// Snapshot tests: a virtio function on a real PCI bus, driven by a simulated guest through MSI-X and ioeventfd
// doorbells, snapshotted (quiesce, save, JSON) and restored into a fresh machine over a copy of guest memory.
import { type DeviceState, GuestMemory, type StateValue } from "@vmm/core";
import type { VirtioDevice } from "../src/device.js";
import { ModernLayout } from "../src/transport/modern.js";
import { Allocator, DriverRing } from "./driver.js";
import { ModernDriver } from "./harness.js";
import { modernDriverOver, pciMachine } from "./pci-machine.js";

export type Machine = ReturnType<typeof pciMachine>;

/** Where the guest moves BAR1 (the modern registers and doorbells) before the snapshot. */
export const MOVED_BAR1 = 0xd300_0000;
const MSIX_ENABLE = 0x8000;

/** The message MSI-X vector `v` sends. */
export const messageOf = (v: number) => ({ address: 0xfee0_0000 + (v << 12), data: 0x30 + v });

/** A guest at work: the machine and its driver (rings, allocator). */
export interface Guest {
  readonly m: Machine;
  readonly driver: ModernDriver;
}

/**
 * The guest's setup: BAR1 moved, features negotiated (all offered, EVENT_IDX included), queue q on MSI-X vector
 * q + 1, configuration changes on vector 0, MSI-X enabled with every vector unmasked.
 */
export function bootGuest(device: VirtioDevice): Guest {
  const m = pciMachine(device);
  m.cfgw(0x14, 4, MOVED_BAR1);
  const driver = modernDriverOver(m);
  const queues = device.queueSizes.length;
  if (!driver.init({ vectors: Array.from({ length: queues }, (_, q) => q + 1), configVector: 0 })) throw new Error("features refused");
  const table = m.bar(2)!;
  for (let v = 0; v <= queues; v++) {
    const m0 = messageOf(v);
    m.mmio.write(table + 16 * v, 4, m0.address);
    m.mmio.write(table + 16 * v + 4, 4, 0);
    m.mmio.write(table + 16 * v + 8, 4, m0.data);
    m.mmio.write(table + 16 * v + 12, 4, 0);
  }
  const msix = m.fn.configRead(0x34, 1); // MSI-X is the first capability
  m.cfgw(msix + 2, 2, MSIX_ENABLE);
  return { m, driver };
}

/**
 * The guest rings queue `q`'s doorbell the way KVM delivers it: through the ioeventfd registered at the BAR's
 * address now (there must be exactly one), after asking for an interrupt on the next used buffer (used_event).
 */
export function ring(g: Guest, q: number): void {
  const r = g.driver.rings[q]!;
  r.setUsedEvent(r.usedIdx());
  const address = g.m.bar(1)! + ModernLayout.NOTIFY + q * ModernLayout.NOTIFY_MULTIPLIER;
  const doorbells = g.m.ioevents.live().filter((e) => e.request.address === address);
  if (doorbells.length !== 1) throw new Error(`${doorbells.length} doorbells at 0x${address.toString(16)}`);
  doorbells[0]!.notify();
}

/** The state as it comes back from a snapshot directory. */
export const throughJson = (s: DeviceState): DeviceState => JSON.parse(JSON.stringify(s)) as DeviceState;

/** A copy of guest RAM, as a restore loads it from the snapshot. */
export function copyMemory(memory: GuestMemory): GuestMemory {
  return new GuestMemory(memory.list().map((r) => ({ gpa: r.gpa, bytes: r.bytes.slice() })));
}

/** The guest's own memory of its rings (cursors, free descriptors) and allocator, over the restored machine. */
export function cloneGuest(g: Guest, m: Machine): Guest {
  const alloc = Object.assign(new Allocator(0), g.driver.alloc);
  const bar = {
    read: (o: number, s: 1 | 2 | 4) => m.mmio.read(m.bar(1)! + o, s),
    write: (o: number, s: 1 | 2 | 4, v: number) => m.mmio.write(m.bar(1)! + o, s, v),
  };
  const driver = new ModernDriver(bar, m.memory, alloc);
  for (const r of g.driver.rings) driver.rings.push(Object.assign(Object.create(DriverRing.prototype) as DriverRing, r, { mem: m.memory }));
  return { m, driver };
}

/** Snapshot of `a` (quiesced already), restored into a fresh machine around `device` over a copy of its RAM. */
export function restoreInto(a: Guest, device: VirtioDevice): { b: Guest; state: DeviceState; msisBefore: number } {
  const state = throughJson(a.m.bus.saveState());
  const m = pciMachine(device, "modern", { memory: copyMemory(a.m.memory) });
  m.bus.restoreState(state);
  return { b: cloneGuest(a, m), state, msisBefore: a.m.msis.length };
}

/** Every path in a JSON value. */
export function paths(value: StateValue, at: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [at];
  if (Array.isArray(value)) value.forEach((v: StateValue, i: number) => out.push(...paths(v, [...at, i])));
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...at, k]));
  return out;
}

export function valueAt(root: StateValue, path: ReadonlyArray<string | number>): StateValue | undefined {
  let v: StateValue | undefined = root;
  for (const k of path) v = (v as Record<string | number, StateValue> | undefined)?.[k];
  return v;
}

export function replaceAt(root: StateValue, path: ReadonlyArray<string | number>, replacement: StateValue): StateValue {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  const copy = (Array.isArray(root) ? [...root] : { ...(root as object) }) as Record<string | number, StateValue>;
  copy[head!] = replaceAt(copy[head!]!, rest, replacement);
  return copy as StateValue;
}
