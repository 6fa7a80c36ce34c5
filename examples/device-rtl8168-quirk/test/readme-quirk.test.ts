/** The minimal quirk plugin printed in the root README's "Writing a quirk plugin" works as printed. */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { assertPlugin, Tokens, type QuirkDevice, type QuirkMsixTable } from "@vmm/core";
import { container } from "tsyringe";
import { expect, it } from "vitest";

const here = path.dirname(fileURLToPath(import.meta.url));
const readme = readFileSync(path.resolve(here, "../../../README.md"), "utf8");

/** A matching device as the VMM hands it to `windows`, with an emulated table of `vectors` (none: no MSI-X). */
function device(vectors: number | undefined): { device: QuirkDevice; table: Uint32Array } {
  const table = new Uint32Array((vectors ?? 0) * 4);
  const msixTable: QuirkMsixTable = {
    vectors: vectors ?? 0,
    read: (o, s) => (s === 4 && o % 4 === 0 && o < table.length * 4 ? table[o / 4]! : 0xffff_ffff),
    write: (o, s, v) => {
      if (s === 4 && o % 4 === 0 && o < table.length * 4) table[o / 4] = v;
    },
  };
  const absent = { read: () => 0xffff_ffff, write: () => {} };
  return {
    table,
    device: {
      name: "vfio-user0",
      vendorId: 0x1234,
      deviceId: 0x5678,
      subsystemVendorId: 0,
      subsystemId: 0,
      revision: 1,
      classCode: 0xff0000,
      bars: [{ index: 0, kind: "mem32", size: 0x2000 }],
      bar: () => absent,
      config: absent,
      msixTable: vectors === undefined ? undefined : msixTable,
    },
  };
}

it("the README's minimal quirk plugin registers its quirk and serves the mirror from the emulated table", async () => {
  const section = readme.slice(readme.indexOf("### Writing a quirk plugin"));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  expect(code).toBeDefined();
  // node_modules is ignored by git and resolves @vmm/* like this package does.
  const dir = path.resolve(here, "../node_modules/.cache");
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "readme-quirk.ts");
  writeFileSync(file, code!);
  const plugin = assertPlugin(await import(pathToFileURL(file).href), "readme");

  const vm = container.createChildContainer();
  await plugin.register(vm, {});
  const [quirk] = vm.resolveAll(Tokens.Quirk);
  expect(quirk!.plugin).toBe("@x/quirk-msix-mirror");
  expect(quirk!.match).toEqual({ vendorId: 0x1234, deviceId: 0x5678 });

  const { device: withMsix, table } = device(4);
  const [mirror, ...rest] = quirk!.windows(withMsix);
  expect(rest).toEqual([]);
  expect([mirror!.target, mirror!.offset, mirror!.size]).toEqual([{ bar: 0 }, 0x1000, 64]);
  mirror!.write!(0x18, 4, 0x41); // vector 1's data, through the mirror
  expect(table[6]).toBe(0x41);
  expect(mirror!.read!(0x18, 4)).toBe(0x41);
  expect(quirk!.windows(device(undefined).device)).toEqual([]);
});
