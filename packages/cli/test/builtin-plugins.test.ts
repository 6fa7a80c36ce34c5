// The built-in plugins' declared device types, and which built-ins a run imports.
import "reflect-metadata";
import { Tokens, type DeviceType } from "@vmm/core";
import { container } from "tsyringe";
import { describe, expect, it } from "vitest";
import { BUILTIN_PLUGINS, loadBuiltinPlugins, type BuiltinPlugin } from "../src/plugins/builtin.js";

describe("built-in plugins", () => {
  it.each(BUILTIN_PLUGINS.map((p) => [p.name, p] as const))("%s registers exactly the device types it declares", async (_name, entry) => {
    const [plugin] = await loadBuiltinPlugins([entry]);
    const vm = container.createChildContainer();
    await plugin!.plugin.register(vm, {});
    const registered = vm.resolveAll<DeviceType>(Tokens.DeviceType).map((t) => t.type);
    expect([...registered].sort()).toEqual([...entry.types!].sort());
  });

  it("a run imports only the built-ins whose device types it asks for; an undeclared type imports them all", async () => {
    const imported: string[] = [];
    const fake = (name: string, types: string[] | undefined): BuiltinPlugin => ({
      name,
      types,
      load: async () => {
        imported.push(name);
        return { name, version: "1.0.0", apiVersion: 2, register: () => {} };
      },
    });
    const list = [fake("@x/a", ["a1", "a2"]), fake("@x/b", ["b1"]), fake("@x/any", undefined)];
    const load = async (needed?: string[]) => {
      imported.length = 0;
      await loadBuiltinPlugins(list, needed && new Set(needed), ["own"]);
      return [...imported];
    };
    expect(await load()).toEqual(["@x/a", "@x/b", "@x/any"]);
    expect(await load([])).toEqual(["@x/any"]);
    expect(await load(["a2"])).toEqual(["@x/a", "@x/any"]);
    expect(await load(["own", "b1"])).toEqual(["@x/b", "@x/any"]);
    expect(await load(["a1", "third-party"])).toEqual(["@x/a", "@x/b", "@x/any"]);
  });
});
