// Plugin quirks on a passthrough function: matching by IDs, windows over a BAR (only their page trapped) and over
// config space, pass-through to the device, the emulated MSI-X table, composition, and errors that name the plugin,
// the quirk and the device.
import { afterEach, describe, expect, it } from "vitest";
import { PluginError, type DeviceQuirk, type PciBarWindow, type QuirkDevice, type QuirkWindow } from "@vmm/core";
import { VfioIrq, VfioRegion } from "../src/backend/backend.js";
import { quirkMatches } from "../src/quirks/index.js";
import { get, makeRig, nicDevice, passthrough, put, type Rig } from "./device-fake.js";

let rig: Rig;
afterEach(() => rig?.cleanup());

const windowOf = (windows: PciBarWindow[], index: number) => windows.find((w) => w.index === index)!;

/** A quirk of `plugin` for the fake NIC (10ec:8168 rev 0x15, subsystem 1043:8677). */
function quirk(name: string, windows: (device: QuirkDevice) => readonly QuirkWindow[], plugin = "@x/test", match: DeviceQuirk["match"] = { vendorId: 0x10ec, deviceId: 0x8168 }): DeviceQuirk {
  return { name, description: `the ${name} quirk`, match, windows, plugin };
}

describe("matching", () => {
  const id = { vendorId: 0x10ec, deviceId: 0x8168, classCode: 0x020000, revision: 0x15, subsystemVendorId: 0x1043, subsystemId: 0x8677, interruptPin: 1 as const };
  const q = (match: DeviceQuirk["match"]) => quirk("m", () => [], "@x/test", match);

  it("needs vendor and device, and the subsystem IDs and revision where the quirk names them", () => {
    expect(quirkMatches(q({ vendorId: 0x10ec, deviceId: 0x8168 }), id)).toBe(true);
    expect(quirkMatches(q({ vendorId: 0x10ec, deviceId: 0x8169 }), id)).toBe(false);
    expect(quirkMatches(q({ vendorId: 0x10ed, deviceId: 0x8168 }), id)).toBe(false);
    expect(quirkMatches(q({ vendorId: 0x10ec, deviceId: 0x8168, subsystemVendorId: 0x1043, subsystemId: 0x8677, revision: 0x15 }), id)).toBe(true);
    expect(quirkMatches(q({ vendorId: 0x10ec, deviceId: 0x8168, subsystemId: 0x8678 }), id)).toBe(false);
    expect(quirkMatches(q({ vendorId: 0x10ec, deviceId: 0x8168, subsystemVendorId: 0x1044 }), id)).toBe(false);
    expect(quirkMatches(q({ vendorId: 0x10ec, deviceId: 0x8168, revision: 0x16 }), id)).toBe(false);
  });

  it("takes any of a list", () => {
    expect(quirkMatches(q([{ vendorId: 1, deviceId: 2 }, { vendorId: 0x10ec, deviceId: 0x8168 }]), id)).toBe(true);
    expect(quirkMatches(q([{ vendorId: 1, deviceId: 2 }]), id)).toBe(false);
  });

  it("a quirk for another device is not applied and its windows() never called", () => {
    rig = makeRig();
    const fn = passthrough(rig, nicDevice());
    let called = false;
    fn.applyQuirks([quirk("other", () => ((called = true), []), "@x/test", { vendorId: 0x8086, deviceId: 0x10d3 })]);
    expect(called).toBe(false);
    expect(fn.quirks()).toEqual([]);
  });
});

describe("windows over a BAR", () => {
  it("trap only their page (the rest of the BAR stays mapped) and reach their hooks window-relative", () => {
    rig = makeRig();
    const dev = nicDevice();
    const fn = passthrough(rig, dev);
    const seen: string[] = [];
    fn.applyQuirks([
      quirk("regs", () => [
        { name: "window", target: { bar: 4 }, offset: 0x2010, size: 8, read: (o, s) => 0x100 * s + o, write: (o, s, v) => void seen.push(`${o}/${s}=${v.toString(16)}`) },
      ]),
    ]);
    rig.bus.attach(fn);
    expect(fn.mappedSpans(4)).toEqual([
      { offset: 0x1000, size: 0x1000 },
      { offset: 0x3000, size: 0x1000 },
    ]);
    const bar4 = windowOf(rig.bus.windows(fn), 4).address;
    expect(rig.mmio.read(bar4 + 0x2014, 4)).toBe(0x404);
    rig.mmio.write(bar4 + 0x2010, 2, 0xbeef);
    expect(seen).toEqual(["0/2=beef"]);
    // The rest of the window's page reaches the device, trapped.
    rig.mmio.write(bar4 + 0x2100, 4, 0x42);
    expect(dev.regionWrites).toEqual(["4:2100/4=42"]);
    expect(fn.quirks()).toEqual([{ name: "regs", plugin: "@x/test", description: "the regs quirk", windows: ["BAR4 0x2010+0x8 window"] }]);
  });

  it("a direction without a hook reaches the device underneath; the quirk reaches it too, bypassing its window", () => {
    rig = makeRig();
    const dev = nicDevice();
    const fn = passthrough(rig, dev);
    let device: QuirkDevice | undefined;
    fn.applyQuirks([
      quirk("half", (d) => {
        device = d;
        return [{ name: "write-only", target: { bar: 2 }, offset: 0x70, size: 4, write: (o, s, v) => d.bar(2).write(0x70 + o, s, v ^ 0xffff_ffff) }];
      }),
    ]);
    rig.bus.attach(fn);
    const bar2 = windowOf(rig.bus.windows(fn), 2).address;
    rig.mmio.write(bar2 + 0x70, 4, 0x0f0f_0f0f);
    expect(get(dev.bytes(VfioRegion.BAR2), 0x70, 4)).toBe(0xf0f0_f0f0);
    expect(rig.mmio.read(bar2 + 0x70, 4)).toBe(0xf0f0_f0f0); // no read hook: the device answers
    expect(device!.bar(2).read(0x70, 4)).toBe(0xf0f0_f0f0);
    expect(device!.bar(2).read(0xffe, 4)).toBe(0xffff_ffff); // outside the BAR: all-ones, no backend call
    expect(device!.bar(3).read(0, 4)).toBe(0xffff_ffff); // no such BAR
    expect([device!.vendorId, device!.deviceId, device!.revision, device!.subsystemVendorId, device!.subsystemId, device!.classCode]).toEqual([0x10ec, 0x8168, 0x15, 0x1043, 0x8677, 0x020000]);
    expect(device!.bars.map((b) => b.index)).toEqual([0, 2, 4]);
  });
});

describe("windows over config space", () => {
  it("take their bytes ahead of the model; straddling accesses split per byte; the real config underneath", () => {
    rig = makeRig();
    const dev = nicDevice();
    put(dev.config, 0x48, 4, 0xfeed_f00d);
    const fn = passthrough(rig, dev);
    const writes: string[] = [];
    fn.applyQuirks([
      quirk("cfg", (d) => [
        // Shows the vendor register inverted and stores writes into it inverted.
        { name: "inverted vendor register", target: "config", offset: 0x48, size: 2, read: (o, s) => ~d.config.read(0x48 + o, s) >>> 0, write: (o, s, v) => (writes.push(`${o}/${s}`), d.config.write(0x48 + o, s, ~v)) },
      ]),
    ]);
    const at = rig.bus.attach(fn);
    expect(rig.bus.configRead(at, 0x48, 2)).toBe(0x0ff2);
    expect(rig.bus.configRead(at, 0x4a, 2)).toBe(0xfeed); // outside the window: the model (passed through)
    expect(rig.bus.configRead(at, 0x48, 4)).toBe(0xfeed_0ff2); // straddles: split per byte
    rig.bus.configWrite(at, 0x48, 4, 0x1234_0000);
    expect(writes).toEqual(["0/1", "1/1"]);
    expect(get(dev.config, 0x48, 4)).toBe(0x1234_ffff);
    expect(rig.bus.configRead(at, 0x00, 4)).toBe(0x8168_10ec); // the rest of config space as before
  });

  it("a config write outside every window still reaches the model (command register, INTx disable)", () => {
    rig = makeRig();
    const dev = nicDevice();
    const fn = passthrough(rig, dev);
    fn.applyQuirks([quirk("cfg", () => [{ name: "w", target: "config", offset: 0xc4, size: 4, read: () => 7 }])]);
    const at = rig.bus.attach(fn);
    rig.bus.configWrite(at, 0x04, 2, 0x0406);
    expect(rig.bus.configRead(at, 0x04, 2) & 0x0406).toBe(0x0406);
    expect(rig.bus.configRead(at, 0xc4, 4)).toBe(7);
  });
});

describe("the emulated MSI-X table", () => {
  it("is the guest's view: a quirk's write unmasks a vector as a guest write through the table does", () => {
    rig = makeRig();
    const dev = nicDevice();
    const fn = passthrough(rig, dev);
    let device: QuirkDevice | undefined;
    fn.applyQuirks([quirk("grab", (d) => ((device = d), []))]);
    const at = rig.bus.attach(fn);
    rig.bus.configWrite(at, 0x04, 2, 0x0006); // memory, bus master
    rig.bus.configWrite(at, 0xb2, 2, 0x8000); // MSI-X on
    const table = device!.msixTable!;
    expect(table.vectors).toBe(4);
    expect(table.read(0x1c, 4)).toBe(1); // vector 1 masked after reset
    table.write(0x10, 4, 0xfee0_0000);
    table.write(0x18, 4, 0x41);
    table.write(0x1c, 4, 0);
    const bar4 = windowOf(rig.bus.windows(fn), 4).address;
    expect(rig.mmio.read(bar4 + 0x18, 4)).toBe(0x41); // what the guest sees through BAR4
    expect(rig.vectors.vector("MSI-X", 1).message).toEqual({ address: 0xfee0_0000, data: 0x41 });
    // The device got the vector's irqfd for vector 1 (deliverable now).
    const last = dev.irqLog.filter((r) => r.index === VfioIrq.MSIX).at(-1)!;
    expect(last.action === "trigger" && last.fds?.length).toBeTruthy();
    expect(table.read(0x40, 4)).toBe(0xffff_ffff); // past the table
    table.write(0x40, 4, 0); // dropped
    expect(get(dev.bytes(VfioRegion.BAR4), 0x10, 4)).toBe(0); // the device's own table untouched
  });
});

describe("composition and errors", () => {
  it("two plugins' windows on one device both work, listed in order", () => {
    rig = makeRig();
    const fn = passthrough(rig, nicDevice());
    fn.applyQuirks([
      quirk("a", () => [{ name: "A", target: { bar: 2 }, offset: 0x70, size: 4, read: () => 0xaaaa }], "@x/one"),
      quirk("b", () => [{ name: "B", target: { bar: 2 }, offset: 0x74, size: 4, read: () => 0xbbbb }, { name: "C", target: "config", offset: 0xc4, size: 4, read: () => 0xcc }], "@x/two"),
    ]);
    const at = rig.bus.attach(fn);
    const bar2 = windowOf(rig.bus.windows(fn), 2).address;
    expect(rig.mmio.read64(bar2 + 0x70)).toBe(0x0000_bbbb_0000_aaaan);
    expect(rig.bus.configRead(at, 0xc4, 4)).toBe(0xcc);
    expect(fn.quirks().map((q) => [q.plugin, q.name, q.windows])).toEqual([
      ["@x/one", "a", ["BAR2 0x70+0x4 A"]],
      ["@x/two", "b", ["BAR2 0x74+0x4 B", "config 0xc4+0x4 C"]],
    ]);
  });

  it("overlapping windows refuse the device naming both quirks, and take back what was laid", () => {
    rig = makeRig();
    const fn = passthrough(rig, nicDevice());
    const apply = () =>
      fn.applyQuirks([
        quirk("a", () => [{ name: "A", target: { bar: 4 }, offset: 0x2070, size: 8 }], "@x/one"),
        quirk("b", () => [{ name: "B", target: { bar: 4 }, offset: 0x2074, size: 4 }], "@x/two"),
      ]);
    expect(apply).toThrow(PluginError);
    expect(apply).toThrow('plugin @x/two: quirk b on device vfio0: vfio0: overlay "b: B" on BAR4: overlaps "a: A"');
    expect(fn.quirks()).toEqual([]);
    rig.bus.attach(fn);
    expect(fn.mappedSpans(4)).toEqual([{ offset: 0x1000, size: 0x3000 }]); // a's page is mapped again
  });

  it("malformed windows and windows() that throws refuse the device naming plugin, quirk and device", () => {
    rig = makeRig();
    const fn = passthrough(rig, nicDevice());
    const bad = (windows: unknown) => () => fn.applyQuirks([quirk("bad", () => windows as QuirkWindow[])]);
    expect(bad([{ name: "x", target: { bar: 3 }, offset: 0, size: 4 }])).toThrow(
      'plugin @x/test: quirk bad on device vfio0: window "x": target must be "config" or { bar: N } naming one of the device\'s BARs',
    );
    expect(bad([{ name: "x", target: { bar: 2 }, offset: 0xffc, size: 8 }])).toThrow("is not inside the BAR");
    expect(bad([{ name: "x", target: "config", offset: 0xffe, size: 4 }])).toThrow("is not inside config space");
    expect(bad([{ name: "x", target: "config", offset: 1.5, size: 4 }])).toThrow("offset and size must be whole numbers");
    expect(bad([{ target: "config", offset: 0, size: 4 }])).toThrow("a window needs a name");
    expect(bad([{ name: "x", target: "config", offset: 0, size: 4, read: 3 }])).toThrow("read and write must be functions");
    expect(bad("nope")).toThrow("windows() must return a list of windows");
    expect(() =>
      fn.applyQuirks([
        quirk("boom", () => {
          throw new Error("no such chip");
        }),
      ]),
    ).toThrow("plugin @x/test: quirk boom on device vfio0: windows() threw: no such chip");
  });

  it("a hook that throws, or reads something that is not a number, is a PluginError naming the quirk, its plugin and the device", () => {
    rig = makeRig();
    const fn = passthrough(rig, nicDevice());
    fn.applyQuirks([
      quirk("flaky", () => [
        {
          name: "regs",
          target: { bar: 2 },
          offset: 0x70,
          size: 8,
          read: (o) => (o === 0 ? (undefined as unknown as number) : -1),
          write: () => {
            throw new Error("bad state");
          },
        },
      ]),
    ]);
    rig.bus.attach(fn);
    const bar2 = windowOf(rig.bus.windows(fn), 2).address;
    expect(() => rig.mmio.write(bar2 + 0x74, 4, 1)).toThrow("plugin @x/test: quirk flaky failed on device vfio0 (regs write at 0x74): bad state");
    expect(() => rig.mmio.read(bar2 + 0x70, 4)).toThrow("plugin @x/test: quirk flaky failed on device vfio0 (regs read at 0x70): it returned undefined, not a number");
    expect(rig.mmio.read(bar2 + 0x74, 4)).toBe(0xffff_ffff); // -1 handed back unsigned
  });
});
