import { PLUGIN_API_VERSION, registerDeviceType, registerQuirk, Tokens, type DeviceType, type VmmPlugin } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { checkPlugin, ConformanceError } from "../src/index.js";
import { goodRawDevice } from "./raw-device.js";

const NAME = "@t/plugin";
const deviceType = (extra: Partial<DeviceType> = {}): DeviceType => ({
  type: "raw-dev",
  description: "a raw device",
  options: { size: { type: "size", default: 4096, min: 16, description: "bytes" }, mode: { type: "enum", values: ["a", "b"], default: "a", description: "mode" } },
  create: ({ name }) => goodRawDevice(name),
  ...extra,
});
const plugin = (register: VmmPlugin["register"], extra: Partial<VmmPlugin> = {}): VmmPlugin => ({
  name: NAME,
  version: "1.0.0",
  apiVersion: PLUGIN_API_VERSION,
  register,
  ...extra,
});
const quirk = { name: "fix", description: "a fix", match: { vendorId: 0x10ec, deviceId: 0x8168 }, windows: () => [] };

async function problemsOf(p: unknown, options = {}): Promise<readonly string[]> {
  try {
    await checkPlugin(p, options);
  } catch (error) {
    expect(error).toBeInstanceOf(ConformanceError);
    return (error as ConformanceError).problems;
  }
  throw new Error("checkPlugin accepted the plugin");
}

describe("checkPlugin", () => {
  it("reports the device types and quirks of a conforming plugin given as a module namespace", async () => {
    const p = plugin((c) => {
      registerDeviceType(c, NAME, deviceType());
      registerQuirk(c, NAME, quirk);
    });
    const report = await checkPlugin({ default: p });
    expect(report.plugin).toBe(p);
    expect(report.deviceTypes.map((t) => [t.type, t.plugin])).toEqual([["raw-dev", NAME]]);
    expect(report.quirks.map((q) => [q.name, q.plugin])).toEqual([["fix", NAME]]);
    expect(report.bindings).toEqual(["@vmm/core:DeviceType", "@vmm/core:Quirk"]);
  });

  it("passes plugin-wide options (validated, defaults filled) to register", async () => {
    let seen: unknown;
    const p = plugin(
      (c, options) => {
        seen = options;
        registerQuirk(c, NAME, quirk);
      },
      { options: { level: { type: "number", integer: true, default: 2, description: "level" } } },
    );
    await checkPlugin(p);
    expect(seen).toEqual({ level: 2 });
    await checkPlugin(p, { options: { level: "7" } });
    expect(seen).toEqual({ level: 7 });
    expect((await problemsOf(p, { options: { lvl: 1 } }))[0]).toMatch(/^the plugin-wide options given to checkPlugin are invalid: .*unknown option 'lvl'/);
  });

  it("refuses what core's assertPlugin refuses", async () => {
    expect(await problemsOf({ default: { name: NAME, version: "1" } })).toEqual([
      `plugin ${NAME}: malformed plugin: missing or wrong apiVersion (number), register (function)`,
    ]);
  });

  it("refuses a register that binds anything but device types and quirks, unless allowed", async () => {
    const service = Symbol.for("@t/plugin:SharedClock");
    const p = plugin((c) => {
      registerQuirk(c, NAME, quirk);
      c.register(service, { useValue: 1 });
      c.register(Tokens.Logger, { useValue: console });
    });
    expect(await problemsOf(p)).toEqual([
      "register bound @t/plugin:SharedClock: a plugin binds device types (registerDeviceType) and quirks (registerQuirk) only (pass allowedTokens for a service it means to share)",
      "register bound @vmm/core:Logger: a plugin binds device types (registerDeviceType) and quirks (registerQuirk) only (pass allowedTokens for a service it means to share)",
    ]);
    expect((await problemsOf(p, { allowedTokens: [service] })).length).toBe(1);
  });

  it("refuses a plugin that registers nothing, and one whose register throws", async () => {
    expect(await problemsOf(plugin(() => {}))).toEqual(["register bound no device type and no quirk"]);
    expect(
      await problemsOf(
        plugin(async () => {
          throw new Error("no such file");
        }),
      ),
    ).toEqual(["register threw: no such file"]);
  });

  it("refuses malformed device types and option schemas, naming the type and the option", async () => {
    const bad = plugin((c) => {
      registerDeviceType(c, NAME, deviceType({ type: "Raw Dev", description: "" }));
      registerDeviceType(
        c,
        NAME,
        deviceType({
          type: "second",
          options: {
            n: { type: "number", min: 10, max: 1, default: 5, description: "n" },
            size: { type: "size", default: 4, min: 16, description: "bytes" },
            mode: { type: "enum", values: [], description: "mode" },
            "a,b": { type: "boolean", description: "flag" },
            must: { type: "string", required: true, default: "x", description: "must" },
            odd: { type: "colour", description: "odd" } as never,
          },
        }),
      );
    });
    expect(await problemsOf(bad)).toEqual([
      'device type "Raw Dev": type must be a lowercase name (a-z, 0-9, \'.\', \'_\', \'-\')',
      'device type "Raw Dev": has no description',
      'device type "second": option \'n\' min 10 is above max 1',
      "device type \"second\": option 'size': its default 4 is invalid for its own spec (option 'size': 4 is below the minimum 16)",
      'device type "second": option \'mode\' values must be a non-empty list of strings',
      "device type \"second\": option 'a,b': the name cannot be given on a command line (letters, digits, '_', '.', '-'; starting with a letter)",
      "device type \"second\": option 'must' is required and has a default (the default is never used)",
      'device type "second": option \'odd\' type "colour" is not one of string, number, boolean, enum, size',
    ]);
  });

  it("refuses a malformed plugin-wide option schema before running register", async () => {
    let ran = false;
    const p = plugin(
      () => {
        ran = true;
      },
      { options: { level: { type: "number", integer: true, default: 2.5, description: "level" } } },
    );
    expect(await problemsOf(p)).toEqual([
      "plugin-wide options: option 'level': its default 2.5 is invalid for its own spec (option 'level': expected an integer, got 2.5)",
    ]);
    expect(ran).toBe(false);
  });

  it("refuses quirks bound around registerQuirk that core would refuse, and duplicates", async () => {
    const p = plugin((c) => {
      c.register(Tokens.Quirk, { useValue: { ...quirk, match: [] } });
      c.register(Tokens.Quirk, { useValue: { ...quirk, name: "Bad Name", match: { vendorId: 0x10000, deviceId: 1 } } });
      registerQuirk(c, NAME, { ...quirk, name: "twice" });
      registerQuirk(c, NAME, { ...quirk, name: "twice" });
    });
    expect(await problemsOf(p)).toEqual([
      `plugin ${NAME}: malformed quirk "fix": missing or wrong match (an empty match list)`,
      `plugin ${NAME}: malformed quirk "Bad Name": missing or wrong name (lowercase name), match (a match needs 16-bit vendorId and deviceId)`,
      'quirk "twice" is registered twice',
    ]);
  });
});
