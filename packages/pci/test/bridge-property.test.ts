import { describe, expect, it } from "vitest";
import fc from "fast-check";
import type { PciDevice } from "@vmm/core";
import { PciBridge, PcieRootPort } from "../src/index.js";
import { makeRig, TestFunction, type Rig } from "./helpers.js";

const ECAM = 0xf000_0000;
const ECAM_BUSES = 16;
const WINDOWS = {
  io: { base: 0x1000, size: 0xf000 },
  mem32: { base: 0xd000_0000, size: 0x1000_0000 },
  mem64: { base: 2 ** 36, size: 2 ** 34 },
};

interface Node {
  fn: PciDevice;
  parent: Node | undefined;
  bridge: boolean;
}

/**
 * 00:01.0 root port -> ep1 (I/O, mem32, 64-bit prefetchable)
 * 00:02.0 bridge -> 01.0 bridge -> ep2 (mem32, I/O) and 04.0 ep3 (64-bit non-prefetchable)
 * 00:03.0 ep0 (mem32)
 */
function build(): { rig: Rig; nodes: Node[] } {
  const rig = makeRig({ windows: WINDOWS });
  rig.bus.installEcam(ECAM, ECAM_BUSES);
  const rp = new PcieRootPort({ name: "rp" });
  const br = new PciBridge({ name: "br", reserve: { io: 0x2000, mem: 16 << 20, pref: 0 } });
  const inner = new PciBridge({ name: "inner", reserve: { io: 0x1000, mem: 8 << 20, pref: 0 } });
  const ep1 = new TestFunction({
    name: "ep1",
    bars: [
      { index: 0, kind: "io", size: 0x100 },
      { index: 1, kind: "mem32", size: 0x1000 },
      { index: 2, kind: "mem64", size: 0x4000, prefetchable: true },
    ],
  });
  const ep2 = new TestFunction({ name: "ep2", bars: [{ index: 0, kind: "mem32", size: 0x2000 }, { index: 1, kind: "io", size: 0x20 }] });
  const ep3 = new TestFunction({ name: "ep3", bars: [{ index: 0, kind: "mem64", size: 0x1_0000 }] });
  const ep0 = new TestFunction({ name: "ep0", bars: [{ index: 0, kind: "mem32", size: 0x1000 }] });
  rig.bus.attach(rp, { device: 1 });
  rig.bus.attach(ep1, { behind: rp, express: "endpoint" });
  rig.bus.attach(br, { device: 2 });
  rig.bus.attach(inner, { behind: br, device: 1 });
  rig.bus.attach(ep2, { behind: inner });
  rig.bus.attach(ep3, { behind: inner, device: 4 });
  rig.bus.attach(ep0, { device: 3 });
  const nRp: Node = { fn: rp, parent: undefined, bridge: true };
  const nBr: Node = { fn: br, parent: undefined, bridge: true };
  const nInner: Node = { fn: inner, parent: nBr, bridge: true };
  const nodes = [
    nRp,
    { fn: ep1, parent: nRp, bridge: false },
    nBr,
    nInner,
    { fn: ep2, parent: nInner, bridge: false },
    { fn: ep3, parent: nInner, bridge: false },
    { fn: ep0, parent: undefined, bridge: false },
  ];
  return { rig, nodes };
}

/** The test's own reading of a bridge: which [lo, hi] ranges it forwards (independent of the bus's code). */
function forwards(b: PciDevice, io: boolean, address: number, size: number): boolean {
  const r = (o: number, s: 1 | 2 | 4) => b.configRead(o, s) >>> 0;
  const cmd = r(4, 2);
  const ctl = r(0x3e, 2);
  const within = (lo: number, hi: number) => lo <= hi && address >= lo && address + size - 1 <= hi;
  if (io) {
    if (!(cmd & 1)) return false;
    if (ctl & 8 && (within(0x3b0, 0x3bb) || within(0x3c0, 0x3df))) return true;
    if (!within((r(0x1c, 1) & 0xf0) << 8, ((r(0x1d, 1) & 0xf0) << 8) | 0xfff)) return false;
    if (!(ctl & 4)) return true;
    for (let a = address; a < address + size; a++) if (a & 0x300) return false;
    return true;
  }
  if (!(cmd & 2)) return false;
  const mem = within((r(0x20, 2) & 0xfff0) * 65536, (r(0x22, 2) & 0xfff0) * 65536 + 0xfffff);
  const pref = within(r(0x28, 4) * 2 ** 32 + (r(0x24, 2) & 0xfff0) * 65536, r(0x2c, 4) * 2 ** 32 + (r(0x26, 2) & 0xfff0) * 65536 + 0xfffff);
  return mem || pref || (ctl & 8 ? within(0xa_0000, 0xb_ffff) : false);
}

/** What each function should decode: command-gated BARs (not the sizing pattern) that every bridge above forwards. */
function model(n: Node): Array<{ index: number; address: number; size: number; io: boolean }> {
  const r = (o: number) => n.fn.configRead(o, 4) >>> 0;
  const cmd = r(4) & 0xffff;
  const out = [];
  for (const bar of n.fn.bars) {
    const off = 0x10 + 4 * bar.index;
    const io = bar.kind === "io";
    const address = io ? (r(off) & 0xffff_fffc) >>> 0 : bar.kind === "mem32" ? (r(off) & 0xffff_fff0) >>> 0 : r(off + 4) * 2 ** 32 + ((r(off) & 0xffff_fff0) >>> 0);
    if (!(cmd & (io ? 1 : 2))) continue;
    if (io ? address + bar.size > 0x1_0000 : address + bar.size > 2 ** 52 || address + bar.size === 2 ** 32) continue;
    let ok = true;
    for (let p = n.parent; p; p = p.parent) ok &&= forwards(p.fn, io, address, bar.size);
    if (ok) out.push({ index: bar.index, address, size: bar.size, io });
  }
  return out;
}

const value = fc.oneof(
  fc.integer({ min: 0, max: 0xffff_ffff }),
  fc.constantFrom(0, 0xffff_ffff, 0xfff0, 0xd000_d000, 0xd1f0_d000, 0xd0f0_d000, 0x0001_0100, 0x0003_0200, 0x2010, 0xf0f0, 0x7),
);
const bridgeOffset = fc.constantFrom(0x04, 0x18, 0x19, 0x1a, 0x1c, 0x20, 0x24, 0x28, 0x2c, 0x3c);
const endpointOffset = fc.constantFrom(0x04, 0x10, 0x14, 0x18, 0x1c);
type Step =
  | { kind: "bridge"; node: number; offset: number; value: number; size: 1 | 2 | 4 }
  | { kind: "endpoint"; node: number; offset: number; value: number; high: number }
  | { kind: "restore"; node: number };
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("bridge" as const), node: fc.constantFrom(0, 2, 3), offset: bridgeOffset, value, size: fc.constantFrom(1 as const, 2 as const, 4 as const) }),
  fc.record({ kind: fc.constant("endpoint" as const), node: fc.constantFrom(1, 4, 5, 6), offset: endpointOffset, value, high: fc.constantFrom(0, 0, 0x10, 0xffff_ffff) }),
  fc.record({ kind: fc.constant("restore" as const), node: fc.constantFrom(0, 2, 3) }),
);

/**
 * Bus numbers that route unambiguously: each bridge's range non-empty, above 0, inside the ECAM window and its
 * parent's range, disjoint from its siblings'.
 */
function saneNumbering(nodes: Node[]): boolean {
  const range = (n: Node) => [n.fn.configRead(0x19, 1), n.fn.configRead(0x1a, 1)] as const;
  for (const n of nodes.filter((x) => x.bridge)) {
    const [sec, sub] = range(n);
    if (sec === 0 || sec > sub || sub >= ECAM_BUSES) return false; // beyond the ECAM window nothing is reachable
    if (n.parent) {
      const [psec, psub] = range(n.parent);
      if (sec <= psec || sub > psub) return false;
    }
    for (const m of nodes.filter((x) => x.bridge && x !== n && x.parent === n.parent)) {
      const [msec, msub] = range(m);
      if (sec <= msub && msec <= sub) return false;
    }
  }
  return true;
}

describe("bridge trees under random config writes (property)", () => {
  it("never decode a window outside its bridges' windows, and registrations equal a model of the tree", () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), (steps) => {
        const { rig, nodes } = build();
        const initial = nodes.map((n) => Array.from({ length: 16 }, (_, i) => n.fn.configRead(i * 4, 4) >>> 0));
        // A tag per function in its cache line size register, to tell who answers a config read.
        nodes.forEach((n, i) => n.fn.configWrite(0x0c, 1, 0x10 + i));
        const host = rig.bus.functions()[0]!.device;
        host.configWrite(0x0c, 1, 0x0f);
        const tags = new Map<PciDevice, number>([[host, 0x0f], ...nodes.map((n, i) => [n.fn, 0x10 + i] as [PciDevice, number])]);
        /** Writes go through ECAM at the address the bus says the function has now (unreachable: dropped). */
        const at = (n: Node) => rig.bus.functions().find((f) => f.device === n.fn)!.address;
        const ecam = (n: Node, off: number, size: 1 | 2 | 4, v: number) => {
          const a = at(n);
          rig.mmio.write(ECAM + a.bus * 0x10_0000 + a.device * 0x8000 + a.function * 0x1000 + off, size, v);
        };
        for (const s of steps) {
          const n = nodes[s.node]!;
          if (s.kind === "bridge") {
            const off = s.offset + (s.size === 4 ? 0 : (s.value >>> 8) & (4 - s.size));
            ecam(n, off, s.size, s.size === 4 ? s.value : s.value & (s.size === 2 ? 0xffff : 0xff));
          } else if (s.kind === "endpoint") {
            // A 64-bit BAR is written as a pair with memory decode off, as Linux does (the bus moves a 64-bit BAR
            // lazily while decode stays on: see the README's policy). With ambiguous bus numbers the write could
            // reach another function at the same address, half of whose 64-bit BAR would then wait for its other
            // half, which the model does not follow: endpoints are written only while the numbering routes
            // unambiguously (bridge writes still go anywhere).
            if (!saneNumbering(nodes)) continue;
            const bar64 = n.fn.bars.find((b) => b.kind === "mem64" && (s.offset - 0x10) >> 3 === b.index >> 1 && s.offset >= 0x10);
            if (bar64) {
              const cmd = n.fn.configRead(4, 2);
              ecam(n, 4, 2, cmd & ~2);
              ecam(n, 0x10 + 4 * bar64.index, 4, s.value);
              ecam(n, 0x14 + 4 * bar64.index, 4, s.high);
              ecam(n, 4, 2, cmd);
            } else ecam(n, s.offset, 4, s.offset === 0x04 ? s.value & 0xffff : s.value);
          } else {
            // Put the bridge's bus numbers, windows and command back (as the guest would after sizing).
            for (const off of [0x18, 0x1c, 0x20, 0x24, 0x28, 0x2c, 0x04]) ecam(n, off, 4, initial[s.node]![off / 4]!);
          }
          // Routing: what answers at a function's address (its parent's secondary bus) is a function with that
          // address, never another; with unambiguous bus numbers every function answers at its own address.
          const sane = saneNumbering(nodes);
          const fns = rig.bus.functions();
          const key = (a: { bus: number; device: number; function: number }) => `${a.bus}:${a.device}.${a.function}`;
          for (const f of fns) {
            const a = f.address;
            const tag = rig.mmio.read(ECAM + a.bus * 0x10_0000 + a.device * 0x8000 + a.function * 0x1000 + 0x0c, 1);
            const claim = fns.filter((g) => key(g.address) === key(a)).map((g) => tags.get(g.device));
            if (tag !== 0xff) expect(claim, `${f.device.name} at ${key(a)} answered by tag ${tag}`).toContain(tag);
            if (sane) expect(tag, `${f.device.name} at ${key(a)}`).toBe(tags.get(f.device));
          }
          // Safety: no registered window of a function lies outside what its bridges forward.
          for (const node of nodes) {
            for (const w of rig.bus.windows(node.fn)) {
              for (let p = node.parent; p; p = p.parent) expect(forwards(p.fn, w.kind === "io", w.address, w.size)).toBe(true);
            }
          }
          // Model: what the bus means to decode equals the model; without overlaps it is exactly what is registered.
          const all = nodes.flatMap((node) => model(node).map((w) => ({ ...w, node })));
          for (const node of nodes) {
            const want = model(node).map((w) => `${w.index}@${w.address.toString(16)}`).sort();
            expect(rig.bus.decodedWindows(node.fn).map((w) => `${w.index}@${w.address.toString(16)}`).sort()).toEqual(want);
          }
          // ECAM is a non-PCI owner: a window a bridge opens over it is meant to be decoded but cannot be registered
          // (README: "Failed moves"), so registrations are compared only when no window overlaps another or ECAM.
          const ecamEnd = ECAM + ECAM_BUSES * 0x10_0000;
          const overlap =
            all.some((a, i) => all.some((b, j) => j > i && a.io === b.io && a.address < b.address + b.size && b.address < a.address + a.size)) ||
            all.some((a) => !a.io && a.address < ecamEnd && ECAM < a.address + a.size);
          if (!overlap) {
            const registered = [...rig.pio.list(), ...rig.mmio.list()].filter((r) => !r.owner.startsWith("pci ")).map((r) => `${r.base.toString(16)}+${r.size.toString(16)}`).sort();
            expect(registered).toEqual(all.map((w) => `${w.address.toString(16)}+${w.size.toString(16)}`).sort());
          }
        }
      }),
      { numRuns: 150 },
    );
  });
});
