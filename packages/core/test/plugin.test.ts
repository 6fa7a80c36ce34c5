import { container } from "tsyringe";
import { describe, expect, it } from "vitest";
import {
  PLUGIN_API_VERSION,
  PluginError,
  Tokens,
  assertPlugin,
  definePlugin,
  deviceTypeSupports,
  parseSize,
  registerDeviceType,
  validateOptions,
  type DeviceType,
  type OptionSchema,
} from "../src/index.js";

const schema: OptionSchema = {
  path: { type: "string", description: "image", required: true },
  ro: { type: "boolean", description: "read-only", default: false },
  queues: { type: "number", description: "queue count", integer: true, min: 1, max: 8, default: 1 },
  mode: { type: "enum", description: "mode", values: ["a", "b"], default: "a" },
  size: { type: "size", description: "size" },
};

describe("validateOptions", () => {
  it("parses strings into typed values and fills defaults", () => {
    expect(validateOptions(schema, { path: "/x", ro: "on", queues: "0x4", size: "64M" }, { plugin: "p", device: "d" })).toEqual({
      path: "/x",
      ro: true,
      queues: 4,
      mode: "a",
      size: 64 * 2 ** 20,
    });
  });

  it("names the plugin, device, option and problem, all at once", () => {
    const err = (() => {
      try {
        validateOptions(schema, { ro: "maybe", queues: "9", mode: "c", colour: "red" }, { plugin: "@x/dev", device: "testdev" });
      } catch (e) {
        return e as PluginError;
      }
    })();
    expect(err).toBeInstanceOf(PluginError);
    expect(err!.message).toMatch(/^plugin @x\/dev: device testdev: /);
    expect(err!.message).toMatch(/unknown option 'colour' \(known: path, ro, queues, mode, size\)/);
    expect(err!.message).toMatch(/option 'path' is required/);
    expect(err!.message).toMatch(/option 'ro': expected a boolean/);
    expect(err!.message).toMatch(/option 'queues': 9 is above the maximum 8/);
    expect(err!.message).toMatch(/option 'mode': expected one of a, b/);
  });

  it("parses sizes", () => {
    expect(parseSize("512")).toBe(512);
    expect(parseSize("4k")).toBe(4096);
    expect(parseSize("1G")).toBe(2 ** 30);
    expect(parseSize("2MiB")).toBe(2 * 2 ** 20);
    expect(parseSize("0x1000")).toBe(4096);
    expect(parseSize("12q")).toBeUndefined();
    expect(parseSize("")).toBeUndefined();
  });
});

describe("plugin contract", () => {
  const good = definePlugin({ name: "@x/ok", version: "1.0.0", apiVersion: PLUGIN_API_VERSION, register() {} });

  it("accepts a well-formed plugin, as a module or as a bare object", () => {
    expect(assertPlugin({ default: good }, "@x/ok")).toBe(good);
    expect(assertPlugin(good, "@x/ok")).toBe(good);
  });

  it("names what is missing in a malformed plugin", () => {
    expect(() => assertPlugin({ default: { name: "@x/bad", version: 1 } }, "./bad.js")).toThrowError(
      /plugin @x\/bad: malformed plugin: missing or wrong version \(string\), apiVersion \(number\), register \(function\)/,
    );
    expect(() => assertPlugin({ default: 42 }, "./num.js")).toThrowError(/plugin \.\/num\.js: the default export is not a plugin object/);
  });

  it("refuses another API version", () => {
    expect(() => assertPlugin({ ...good, apiVersion: 99 }, "x")).toThrowError(/targets plugin API version 99, but this VMM speaks version 2/);
  });

  it("device types registered by plugins are resolvable by token, with their plugin recorded", () => {
    const vm = container.createChildContainer();
    const dt: DeviceType = { type: "t", description: "d", options: {}, create: () => ({ name: "t0", bars: [], configRead: () => 0, configWrite: () => {} }) };
    registerDeviceType(vm, "@x/ok", dt);
    registerDeviceType(vm, "@x/ok", { ...dt, type: "u" });
    const all = vm.resolveAll(Tokens.DeviceType);
    expect(all.map((d) => `${d.plugin}:${d.type}`)).toEqual(["@x/ok:t", "@x/ok:u"]);
    expect(container.isRegistered(Tokens.DeviceType)).toBe(false);
  });

  it("a device type may list the guest architectures it supports; unknown or empty lists are refused naming the plugin", () => {
    const vm = container.createChildContainer();
    const dt: DeviceType = { type: "t", description: "d", options: {}, create: () => ({ name: "t0", bars: [], configRead: () => 0, configWrite: () => {} }) };
    registerDeviceType(vm, "@x/ok", { ...dt, architectures: ["x86_64"] });
    expect(deviceTypeSupports(vm.resolveAll(Tokens.DeviceType)[0]!, "x86_64")).toBe(true);
    expect(deviceTypeSupports(vm.resolveAll(Tokens.DeviceType)[0]!, "arm64")).toBe(false);
    expect(deviceTypeSupports(dt, "arm64")).toBe(true);
    expect(() => registerDeviceType(vm, "@x/bad", { ...dt, architectures: ["riscv64" as "arm64"] })).toThrowError(
      "plugin @x/bad: device type t: architectures must list some of x86_64, arm64 (unknown: riscv64)",
    );
    expect(() => registerDeviceType(vm, "@x/bad", { ...dt, architectures: [] })).toThrowError(/architectures must list some of x86_64, arm64$/);
  });
});
