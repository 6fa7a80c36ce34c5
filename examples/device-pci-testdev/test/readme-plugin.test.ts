/** The minimal plugin printed in the root README's "Writing a device plugin" works as printed. */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { assertPlugin, createMmioSpace, createPortIoSpace, Tokens, validateOptions, type InterruptLine, SignalMsiVectors } from "@vmm/core";
import { PciBus } from "@vmm/pci";
import { container } from "tsyringe";
import { expect, it } from "vitest";

const here = path.dirname(fileURLToPath(import.meta.url));
const readme = readFileSync(path.resolve(here, "../../../README.md"), "utf8");

it("the README's minimal plugin registers, validates its options and serves its scratch register", async () => {
  const section = readme.slice(readme.indexOf("## Writing a device plugin"));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  expect(code).toBeDefined();
  // node_modules is ignored by git and resolves @vmm/* like this package does.
  const dir = path.resolve(here, "../node_modules/.cache");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "readme-plugin.ts");
  writeFileSync(file, code!);
  const plugin = assertPlugin(await import(pathToFileURL(file).href), "readme");

  const vm = container.createChildContainer();
  await plugin.register(vm, {});
  const [type] = vm.resolveAll(Tokens.DeviceType);
  expect(type!.type).toBe("scratch");
  expect(type!.plugin).toBe("@x/device-scratch");
  const options = validateOptions(type!.options, { initial: "7" }, { plugin: plugin.name, device: "scratch0" });
  const device = await type!.create({ container: vm, name: "scratch0" }, options);

  const pio = createPortIoSpace();
  const bus = new PciBus({
    pio,
    mmio: createMmioSpace(),
    msiVectors: new SignalMsiVectors({ signal() {} }),
    irq: (): InterruptLine => ({ level: false, set() {} }),
    windows: { io: { base: 0x6200, size: 0x1000 }, mem32: { base: 0xd200_0000, size: 0x100_0000 } },
  });
  const address = bus.attach(device);
  const port = bus.configRead(address, 0x10, 4) & ~3;
  expect(pio.read(port, 4)).toBe(7);
  pio.write(port, 4, 0x55aa);
  expect(pio.read(port, 4)).toBe(0x55aa);
});
