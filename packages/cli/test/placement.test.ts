import { EventEmitter } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import type { CliContext } from "../src/context.js";
import { main } from "../src/main.js";
import { formatTopology, takePlacement } from "../src/options/placement.js";
import { FakeMachine } from "./helpers/fake-machine.js";
import { fixturePlugin } from "./helpers/spawn.js";

const tmp = mkdtempSync(path.join(tmpdir(), "vmm-placement-"));
const kernel = path.join(tmp, "guest.bin");
writeFileSync(kernel, Uint8Array.of(0xf4));
const disk = path.join(tmp, "disk.img");
writeFileSync(disk, new Uint8Array(4096));

async function run(args: string[]): Promise<{ status: number; err: string; machine: FakeMachine | undefined }> {
  const err: string[] = [];
  const machines: FakeMachine[] = [];
  const ctx: CliContext = {
    cwd: tmp,
    stdout: () => {},
    stderr: (t) => err.push(t),
    signals: new EventEmitter() as unknown as CliContext["signals"],
    builtins: [{ name: "fake-virtio.mjs", load: () => import(pathToFileURL(fixturePlugin("fake-virtio.mjs")).href) }],
    machineFactory: async () => (config) => {
      const m = new FakeMachine(config, async () => ({ status: 0, reason: "shutdown" }), true, true);
      machines.push(m);
      return m;
    },
  };
  const status = await main(["run", "-k", kernel, ...args], ctx);
  return { status, err: err.join(""), machine: machines[0] };
}

const tree = (m: FakeMachine) =>
  m.pciBus!.topology().map((n) => [n.name, n.address.device, n.bridge?.secondary, n.children.map((c) => [c.name, c.address.bus, c.address.device])]);

describe("--device placement (bus=, addr=, placement=, pcie-root-port)", () => {
  it("puts a device behind a named root port, another behind a root port of its own, and one at an address", async () => {
    const r = await run([
      "--device", "pcie-root-port,id=rp1,addr=4,port=1,slot=1,mem-reserve=1M,io-reserve=4K",
      "--device", `virtio-blk,path=${disk},bus=rp1`,
      "--device", "virtio-rng,placement=root-port",
      "--device", "virtio-console,addr=0x1f,placement=integrated",
    ]);
    expect(r.err).toBe("");
    expect(r.status).toBe(0);
    expect(tree(r.machine!)).toEqual([
      ["host-bridge", 0, undefined, []],
      // Bus numbers depth first in slot order, as firmware numbers them.
      ["virtio-rng0-rp", 1, 1, [["virtio-rng0", 1, 0]]],
      ["rp1", 4, 2, [["virtio-blk0", 2, 0]]],
      ["virtio-console0", 0x1f, undefined, []],
    ]);
  });

  it("refuses bus= naming no root port, a second device on one root port, bad addr= and placement=", async () => {
    for (const [args, message] of [
      [["--device", `virtio-blk,path=${disk},bus=nope`], /bus=nope names no pcie-root-port/],
      [["--device", "pcie-root-port,id=a", "--device", "virtio-rng,bus=a", "--device", "virtio-console,bus=a"], /already has a device/],
      [["--device", "virtio-rng,bus=a", "--device", "pcie-root-port,id=a"], /must come after/],
      [["--device", "virtio-rng,addr=40"], /addr=40 must be a device number/],
      [["--device", "virtio-rng,placement=switch"], /placement must be one of pci\|integrated\|root-port/],
      [["--device", "pcie-root-port,id=a,bogus=1"], /unknown option 'bogus'/],
      [["--device", "pcie-root-port,id=a", "--device", "pcie-root-port,id=a"], /id=a is used twice/],
    ] as const) {
      const r = await run([...args]);
      expect(r.status, args.join(" ")).toBe(2);
      expect(r.err).toMatch(message);
    }
  });

  it("formats the tree for --debug, and vmm devices lists pcie-root-port and the placement options", async () => {
    const r = await run(["--device", "pcie-root-port,id=rp1,mem-reserve=1M,io-reserve=4K,pref64-reserve=0", "--device", `virtio-blk,path=${disk},bus=rp1`]);
    expect(r.status).toBe(0);
    expect(formatTopology(r.machine!.pciBus!.topology())).toEqual([
      "00:00.0 host-bridge",
      "00:01.0 rp1 pcie [bridge 01-01 io 7000-7fff mem e0000000-e00fffff]",
      "└─ 01:00.0 virtio-blk0",
    ]);
    const out: string[] = [];
    const ctx = { cwd: tmp, stdout: (t: string) => out.push(t), stderr: () => {}, signals: new EventEmitter() as unknown as CliContext["signals"], builtins: [] };
    expect(await main(["devices"], ctx)).toBe(0);
    expect(out.join("")).toMatch(/^pcie-root-port: a PCI Express root port .*\n {2}from plugin vmm \(built-in\)\n/m);
    expect(out.join("")).toMatch(/^ {2}placement\s+one of pci\|integrated\|root-port\s+pci\s/m);
  });

  it("leaves an option the device type declares itself to the device", () => {
    const options: Record<string, string | true> = { id: "7", bus: "x", addr: "3" };
    expect(takePlacement({ name: "dev", options }, options, ["bus"])).toEqual({ addr: { device: 3 }, mode: "pci" });
    expect(options).toEqual({ id: "7", bus: "x" });
  });
});
