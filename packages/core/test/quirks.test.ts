import { container } from "tsyringe";
import { describe, expect, it } from "vitest";
import { PluginError, registerQuirk, Tokens, type DeviceQuirk } from "../src/index.js";

const quirk: DeviceQuirk = {
  name: "demo-window",
  description: "a window over BAR2",
  match: { vendorId: 0x10ec, deviceId: 0x8168 },
  windows: () => [{ name: "regs", target: { bar: 2 }, offset: 0x70, size: 8 }],
};

describe("registerQuirk", () => {
  it("binds quirks under Tokens.Quirk with the plugin that provided them, several per container", () => {
    const vm = container.createChildContainer();
    registerQuirk(vm, "@x/one", quirk);
    registerQuirk(vm, "@x/two", { ...quirk, name: "other", match: [{ vendorId: 1, deviceId: 2, revision: 3 }, { vendorId: 4, deviceId: 5 }] });
    const all = vm.resolveAll(Tokens.Quirk);
    expect(all.map((q) => [q.name, q.plugin])).toEqual([
      ["demo-window", "@x/one"],
      ["other", "@x/two"],
    ]);
    expect(all[0]!.windows).toBe(quirk.windows);
  });

  it("refuses a malformed quirk naming the plugin and every problem", () => {
    const vm = container.createChildContainer();
    const bad = { name: "Bad Name", match: { vendorId: 0x10000, deviceId: 1 } } as unknown as DeviceQuirk;
    expect(() => registerQuirk(vm, "@x/bad", bad)).toThrow(PluginError);
    expect(() => registerQuirk(vm, "@x/bad", bad)).toThrow(
      'plugin @x/bad: malformed quirk "Bad Name": missing or wrong name (lowercase name), description (string), windows (function), match (a match needs 16-bit vendorId and deviceId)',
    );
    expect(() => registerQuirk(vm, "@x/bad", { ...quirk, match: [] })).toThrow("match (an empty match list)");
    expect(() => registerQuirk(vm, "@x/bad", { ...quirk, match: { vendorId: 1, deviceId: 2, revision: 256 } })).toThrow("match (the revision is a byte)");
    expect(() => registerQuirk(vm, "@x/bad", { ...quirk, match: { vendorId: 1, deviceId: 2, subsystemId: -1 } })).toThrow("subsystem IDs are 16-bit numbers");
    expect(() => registerQuirk(vm, "@x/bad", null as unknown as DeviceQuirk)).toThrow("plugin @x/bad: registered a quirk that is not an object");
    expect(vm.isRegistered(Tokens.Quirk, true)).toBe(false);
  });
});
