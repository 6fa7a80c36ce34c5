import { EventEmitter } from "node:events";
import { pathToFileURL } from "node:url";
import { expect } from "vitest";
import type { CliContext } from "../../src/context.js";
import { main } from "../../src/main.js";
import { FakeMachine } from "./fake-machine.js";
import { fixturePlugin } from "./spawn.js";

/**
 * `vmm devices ARGS` through main() with a fake machine on a real PCI bus (the assembly path without KVM), from
 * `cwd`, with the fake virtio plugin as the only built-in. The machines it built come back for inspection.
 */
export async function runDevices(cwd: string, args: string[]): Promise<{ status: number; out: string; err: string; machines: FakeMachine[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const machines: FakeMachine[] = [];
  const ctx: CliContext = {
    cwd,
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    signals: new EventEmitter() as unknown as CliContext["signals"],
    builtins: [{ name: "fake-virtio.mjs", load: () => import(pathToFileURL(fixturePlugin("fake-virtio.mjs")).href) }],
    machineFactory: async () => (config) => {
      const m = new FakeMachine(config, async () => expect.fail("vmm devices must not run the machine"), true, true);
      machines.push(m);
      return Object.assign(m, { pciTopology: () => m.pciBus!.topology(), pciFunctions: () => m.pciBus!.functions() });
    },
  };
  const status = await main(["devices", ...args], ctx);
  return { status, out: out.join(""), err: err.join(""), machines };
}
