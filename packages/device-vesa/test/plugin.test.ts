import { existsSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { container as rootContainer } from "tsyringe";
import { describe, expect, it } from "vitest";
import {
  ConfigurationError,
  MemoryLogger,
  MmioBackedMemoryMapper,
  Tokens,
  assertPlugin,
  createMmioSpace,
  createPortIoSpace,
  validateOptions,
  type DeviceType,
} from "@vmm/core";
import * as vesa from "../src/index.js";
import plugin from "../src/plugin.js";
import { parseDisplays } from "../src/displays/display.js";

function vm(pluginOptions: Record<string, string> = {}) {
  const c = rootContainer.createChildContainer();
  const logger = new MemoryLogger();
  c.register(Tokens.MemoryMapper, { useValue: new MmioBackedMemoryMapper(createMmioSpace()) });
  c.register(Tokens.PortIo, { useValue: createPortIoSpace() });
  c.register(Tokens.Logger, { useValue: logger });
  plugin.register(c, pluginOptions);
  const type = c.resolveAll<DeviceType>(Tokens.DeviceType).find((t) => t.type === "vesa")!;
  const create = (raw: Record<string, unknown>) =>
    type.create({ container: c, name: "vesa0" }, validateOptions(type.options, raw, { plugin: plugin.name, device: "vesa" }));
  return { type, create, logger };
}

describe("vesa plugin", () => {
  it("is a valid plugin, also exported as vesaPlugin", () => {
    expect(assertPlugin({ default: plugin }, "@vmm/device-vesa")).toBe(plugin);
    expect(vesa.vesaPlugin).toBe(plugin);
  });

  it("registers device type vesa with fbsize and display options", async () => {
    const { type, create } = vm();
    expect(type.plugin).toBe("@vmm/device-vesa");
    expect(Object.keys(type.options)).toEqual(["fbsize", "display"]);
    const device = (await create({ fbsize: "4M" })) as vesa.VesaDevice;
    expect(device).toBeInstanceOf(vesa.VesaDevice);
    expect(device.bars).toEqual([{ index: 0, kind: "mem32", size: 4 << 20, prefetchable: true }]);
    expect(() => validateOptions(type.options, { fbsize: "1K" }, { plugin: plugin.name })).toThrow(/below the minimum/);
  });

  it("starts the displays it is given ('+'-separated) and stops them on close (the cli's end-of-VM call)", async () => {
    const { create, logger } = vm();
    const device = (await create({ display: `vnc:0+web:0+png:${join(tmpdir(), "vesa-plugin.png")}` })) as vesa.VesaDevice;
    expect(device.displays.map((d) => d.kind)).toEqual(["vnc", "web", "png"]);
    expect(logger.lines.join("\n")).toMatch(/vnc on 127\.0\.0\.1:\d+/);
    const png = join(tmpdir(), "vesa-plugin.png");
    rmSync(png, { force: true });
    await device.close();
    expect(existsSync(png)).toBe(true);
    expect(device.displays).toEqual([]);
  });

  it("uses the plugin-wide display option when the device has none", async () => {
    const { create } = vm({ display: "vnc:0" });
    const device = (await create({})) as vesa.VesaDevice;
    expect(device.displays.map((d) => d.kind)).toEqual(["vnc"]);
    await device.shutdown();
  });

  it("reports bad displays and busy ports as configuration errors", async () => {
    const { create } = vm();
    await expect(create({ display: "sdl" })).rejects.toThrow(/unknown kind 'sdl'/);
    await expect(create({ display: "vnc:99999" })).rejects.toThrow(ConfigurationError);
    await expect(create({ display: "png:/nonexistent-dir/x.png" })).rejects.toThrow(/cannot write \/nonexistent-dir\/x.png/);
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const port = (busy.address() as { port: number }).port;
    try {
      await expect(create({ display: `web:${port}` })).rejects.toThrow(/cannot start display.*EADDRINUSE/);
    } finally {
      busy.close();
    }
  });

  it("parses display lists", () => {
    expect(parseDisplays("png:/tmp/a:b.png,vnc,web:8080")).toEqual([
      { kind: "png", path: "/tmp/a:b.png" },
      { kind: "vnc", port: 5900 },
      { kind: "web", port: 8080 },
    ]);
    expect(() => parseDisplays("png")).toThrow(/needs a path/);
  });
});
