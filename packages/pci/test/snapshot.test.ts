import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { SnapshotError, type DeviceState, type PciDevice, type StateValue } from "@vmm/core";
import { MsiCapability, MsixCapability, PciFunction, PcieRootPort, Q35HostBridge, type EcamWindow, type PamSegment } from "../src/index.js";
import { makeRig, ranges, rootPortRig, TestFunction } from "./helpers.js";

/** The same machine each time: a root port with an endpoint (MSI-X in BAR0, MSI, INTA) and one on bus 0. */
function machine() {
  const tree = rootPortRig();
  const { rig, rp } = tree;
  const ep = new TestFunction({
    name: "ep",
    interruptPin: 1,
    bars: [
      { index: 0, kind: "mem32", size: 0x1000 },
      { index: 2, kind: "mem64", size: 0x4000, prefetchable: true },
      { index: 4, kind: "io", size: 0x100 },
    ],
  });
  const msix = new MsixCapability({ vectors: 4, tableBar: 0, tableOffset: 0x800 });
  ep.addCapability(msix);
  ep.addCapability(new MsiCapability({ vectors: 2 }));
  rig.bus.attach(ep, { behind: rp, express: "endpoint" });
  const plain = new TestFunction({ name: "plain", bars: [{ index: 1, kind: "mem32", size: 0x1000 }] });
  rig.bus.attach(plain, { device: 3 });
  // Function 0 only here.
  const ecam = (bus: number, dev: number, off: number, size: 1 | 2 | 4 = 4) => tree.ecam(bus, dev, 0, off, size);
  const ecamWrite = (bus: number, dev: number, off: number, size: 1 | 2 | 4, v: number) => tree.ecamWrite(bus, dev, 0, off, size, v);
  return { rig, rp, ep, msix, plain, ecam, ecamWrite };
}

const MOVED_BAR0 = 0xd040_0000;

/** What a guest does before the snapshot: renumber the port's bus, move BAR0 inside its window, MSI-X on. */
function programmed() {
  const m = machine();
  const { ecam, ecamWrite, rig } = m;
  ecamWrite(0, 1, 0x18, 4, 0x0007_0700); // secondary 7, subordinate 7
  const memBase = (ecam(0, 1, 0x20, 2) & 0xfff0) * 0x1_0000;
  const memLimit = (ecam(0, 1, 0x22, 2) & 0xfff0) * 0x1_0000 + 0xf_ffff;
  expect(MOVED_BAR0 > memBase && MOVED_BAR0 + 0x1000 <= memLimit).toBe(true); // inside the port's memory window
  ecamWrite(7, 0, 0x10, 4, MOVED_BAR0);
  ecamWrite(7, 0, 0x04, 2, 0x0007); // I/O, memory, bus master
  const msixAt = m.ep.configRead(0x34, 1);
  ecamWrite(7, 0, msixAt + 2, 2, 0x8000); // MSI-X enable
  const entry = (v: number, address: number, data: number, masked: boolean) => {
    rig.mmio.write(MOVED_BAR0 + 0x800 + 16 * v, 4, address);
    rig.mmio.write(MOVED_BAR0 + 0x800 + 16 * v + 8, 4, data);
    rig.mmio.write(MOVED_BAR0 + 0x800 + 16 * v + 12, 4, masked ? 1 : 0);
  };
  entry(1, 0xfee0_1000, 0x41, false);
  entry(2, 0xfee0_2000, 0x42, true);
  m.msix.notify(2); // masked: pending in the PBA
  m.ep.intx.raise();
  ecamWrite(0, 3, 0x14, 4, 0xd300_0000); // the bus-0 function's BAR1 moves too
  return { ...m, entry };
}

/** A state as it comes back from a snapshot file. */
const throughJson = (s: DeviceState): DeviceState => JSON.parse(JSON.stringify(s)) as DeviceState;

describe("PCI snapshots", () => {
  it("restores config space, BAR windows behind a renumbered bridge, MSI-X and INTx into a fresh bus", () => {
    const a = programmed();
    const state = throughJson(a.rig.bus.saveState());
    const b = machine();
    b.ep.events.length = 0;
    b.rig.bus.restoreState(state);

    // Config space reads the same, all 4 KiB of every function, at the guest's bus numbers.
    for (const [bus, dev] of [[0, 0], [0, 1], [7, 0], [0, 3]] as const) {
      for (let off = 0; off < 0x1000; off += 4) expect([bus, dev, off, b.ecam(bus, dev, off)]).toEqual([bus, dev, off, a.ecam(bus, dev, off)]);
    }
    expect(b.ecam(1, 0, 0)).toBe(0xffff_ffff); // the initial bus number reaches nothing any more
    // The windows are where the guest put them, with handlers and barActivated.
    expect(ranges(b.rig.mmio)).toEqual(ranges(a.rig.mmio));
    expect(ranges(b.rig.pio)).toEqual(ranges(a.rig.pio));
    expect(b.ep.events).toContain(`+0@${MOVED_BAR0.toString(16)}`);
    expect(b.rig.mmio.read(MOVED_BAR0, 1)).toBe(0xa0);
    b.rig.mmio.write(MOVED_BAR0 + 0x10, 4, 0x1234);
    expect(b.ep.writes).toEqual([[0, 0x10, 4, 0x1234]]);
    expect(b.rig.mmio.read(0xd300_0000, 1)).toBe(0xa1);
    expect(b.rig.bus.topology()[1]!.bridge).toMatchObject({ secondary: 7, subordinate: 7 });
    // MSI-X: the restored message fires; the pending vector is sent when the guest unmasks it.
    b.msix.notify(1);
    expect(b.rig.messages).toEqual([{ address: 0xfee0_1000, data: 0x41 }]);
    expect(b.msix.pending(2)).toBe(true);
    b.rig.mmio.write(MOVED_BAR0 + 0x800 + 16 * 2 + 12, 4, 0);
    expect(b.rig.messages).toEqual([{ address: 0xfee0_1000, data: 0x41 }, { address: 0xfee0_2000, data: 0x42 }]);
    // INTx: the line is asserted again at the GSI the pin routes to.
    const gsi = b.rig.bus.intxRoutes().find((r) => r.source?.address.bus === 7)!.gsi;
    expect(b.ep.intx.level).toBe(true);
    expect(b.rig.levels.get(gsi)).toBe(true);
  });

  it("restores one function with restoreFunction, moving its windows", () => {
    const a = programmed();
    const b = machine();
    b.rig.bus.restoreFunction(b.plain, throughJson(a.plain.saveState()));
    expect(b.rig.bus.windows(b.plain)).toEqual([{ index: 1, kind: "mem32", address: 0xd300_0000, size: 0x1000 }]);
  });

  it("lists every function with its position, address and name", () => {
    const a = programmed();
    const data = a.rig.bus.saveState().data as { functions: Array<{ position: string; address: string; name: string }> };
    expect(data.functions.map((f) => [f.position, f.address, f.name])).toEqual([
      ["00.0", "00:00.0", "host-bridge"],
      ["01.0", "00:01.0", "rp1"],
      ["01.0/00.0", "07:00.0", "ep"],
      ["03.0", "00:03.0", "plain"],
    ]);
  });

  it("refuses a function without saveState, naming it", () => {
    const { rig } = machine();
    const foreign: PciDevice = { name: "foreign0", bars: [], configRead: (o) => (o === 0 ? 0x1234_5678 : 0), configWrite: () => {} };
    rig.bus.attach(foreign, { device: 5 });
    expect(() => rig.bus.saveState()).toThrow(new SnapshotError("foreign0: this device cannot be snapshotted (no saveState)"));
  });

  it("refuses a snapshot whose functions do not match the machine, naming both", () => {
    const state = throughJson(programmed().rig.bus.saveState());
    const other = makeRig();
    other.bus.attach(new PcieRootPort({ name: "rp1" }), { device: 1 });
    other.bus.attach(new TestFunction({ name: "net0" }), { device: 3 });
    expect(() => other.bus.restoreState(state)).toThrow(new SnapshotError("pci: the snapshot has plain (then 00:03.0) where this machine has 00:03.0 net0"));
    const fewer = machine();
    fewer.rig.bus.detach(fewer.plain);
    expect(() => fewer.rig.bus.restoreState(state)).toThrow(new SnapshotError("pci: the snapshot has plain at 00:03.0, this machine has no function there"));
  });

  it("refuses a function state from another kind of function or layout", () => {
    const a = programmed();
    const other = new TestFunction({ name: "plain", deviceId: 0x1042, bars: [{ index: 1, kind: "mem32", size: 0x1000 }] });
    expect(() => other.restoreState(a.plain.saveState())).toThrow(/^plain: the saved state is of another function .*IDs 1af4:1041, here 1af4:1042\)$/);
    const withMsix = new TestFunction({ name: "plain", bars: [{ index: 1, kind: "mem32", size: 0x1000 }] });
    withMsix.addCapability(new MsixCapability({ vectors: 2, tableBar: 1 }));
    expect(() => withMsix.restoreState(a.plain.saveState())).toThrow(SnapshotError);
    expect(() => a.plain.restoreState({ version: 2, data: {} })).toThrow(new SnapshotError("plain: saved state version 2, this build reads version 1"));
  });

  it("Q35: PCIEXBAR and PAM come back and the machine hears both", () => {
    const build = () => {
      const ecams: EcamWindow[] = [];
      const pams: PamSegment[][] = [];
      const rig = makeRig({ hostBridge: false });
      const q35 = new Q35HostBridge({ ecam: { base: 0xb000_0000, busCount: 256 }, onEcamChange: (w) => ecams.push(w), onPamChange: (p) => pams.push([...p]) });
      rig.bus.attach(q35, { device: 0 });
      return { rig, q35, ecams, pams };
    };
    const a = build();
    a.rig.bus.configWrite({ device: 0 }, 0x60, 4, 0xe000_0003); // 128 buses at 0xE0000000
    a.rig.bus.configWrite({ device: 0 }, 0x91, 1, 0x33);
    const b = build();
    b.rig.bus.restoreState(throughJson(a.rig.bus.saveState()));
    expect(b.ecams.at(-1)).toEqual({ enabled: true, base: 0xe000_0000, busCount: 128 });
    expect(b.pams.at(-1)).toEqual(a.q35.pam);
    expect(b.q35.pam[0]).toMatchObject({ start: 0xc0000, readRam: true, writeRam: true });
  });

  it("a passthrough function refuses to be snapshotted", () => {
    class Passthrough extends TestFunction {
      constructor() {
        super({ name: "vfio0" });
        this.config.backWith({ read: () => 0, write: () => {} });
      }
    }
    expect(() => new Passthrough().saveState()).toThrow(new SnapshotError("vfio0: a passthrough function cannot be snapshotted"));
  });
});

/** Every path in a JSON value, with the value there. */
function paths(value: StateValue, at: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [at];
  if (Array.isArray(value)) value.forEach((v: StateValue, i: number) => out.push(...paths(v, [...at, i])));
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...at, k]));
  return out;
}

function replaceAt(root: StateValue, path: ReadonlyArray<string | number>, replacement: StateValue): StateValue {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  const copy = (Array.isArray(root) ? [...root] : { ...(root as object) }) as Record<string | number, StateValue>;
  copy[head!] = replaceAt(copy[head!]!, rest, replacement);
  return copy as StateValue;
}

/** Base64 of the same length with some bytes changed: data that decodes, with garbage in it. */
function flipBytes(b64: string, flips: Array<[number, number]>): string {
  const bytes = Buffer.from(b64, "base64");
  for (const [at, v] of flips) if (bytes.length) bytes[at % bytes.length] = v;
  return bytes.toString("base64");
}

describe("PCI snapshot fuzzing", () => {
  const saved = throughJson(programmed().rig.bus.saveState()) as unknown as StateValue;
  const all = paths(saved);

  it("restoring mutated or garbage state only ever throws SnapshotError, and the bus keeps working", () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant("replace" as const), at: fc.nat(all.length - 1), value: fc.jsonValue() as fc.Arbitrary<StateValue> }),
      fc.record({
        kind: fc.constant("flip" as const),
        at: fc.nat(all.length - 1),
        flips: fc.array(fc.tuple(fc.nat(4095), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 16 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        let state = saved;
        for (const m of mutations) {
          const path = all[m.at]!;
          let current: StateValue | undefined = state;
          for (const k of path) current = (current as Record<string | number, StateValue> | undefined)?.[k];
          if (m.kind === "replace") state = replaceAt(state, path, m.value);
          else if (typeof current === "string") state = replaceAt(state, path, flipBytes(current, m.flips));
        }
        const b = machine();
        try {
          b.rig.bus.restoreState(state as unknown as DeviceState);
        } catch (error) {
          if (!(error instanceof SnapshotError)) throw error;
        }
        // Whatever happened, config cycles and BAR accesses are still served.
        for (const f of b.rig.bus.functions()) b.rig.bus.configRead(f.address, 0, 4);
        for (const w of b.rig.bus.windows(b.ep)) (w.kind === "io" ? b.rig.pio : b.rig.mmio).read(w.address, 4);
        b.msix.notify(1);
      }),
      { numRuns: 300 },
    );
  });

  it("garbage instead of a state only ever throws SnapshotError", () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer(), (data, version) => {
        const b = machine();
        for (const s of [{ version: 1, data }, { version, data }, data]) {
          expect(() => b.rig.bus.restoreState(s as unknown as DeviceState)).toThrow(SnapshotError);
          expect(() => b.ep.restoreState(s as unknown as DeviceState)).toThrow(SnapshotError);
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe("PCI snapshots of subclasses", () => {
  it("refuse a subclass that does not say what it keeps outside config space, naming it; a bus with it saves nothing", () => {
    class PluginDevice extends PciFunction {}
    const device = new PluginDevice({ name: "testdev0", vendorId: 0x1b36, deviceId: 0x0005, classCode: 0xff0000 });
    expect(() => device.saveState()).toThrow(new SnapshotError("testdev0: this device cannot be snapshotted (PluginDevice does not save its own state: it overrides no saveDeviceState)"));
    const rig = makeRig();
    rig.bus.attach(device);
    expect(() => rig.bus.saveState()).toThrow(SnapshotError);
  });
});
