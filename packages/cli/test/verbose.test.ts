/** `vmm run --verbose`: what was assembled, printed before the guest runs (a fake machine on a real PCI bus). */
import { EventEmitter } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import type { CliContext } from "../src/context.js";
import { main } from "../src/main.js";
import { FakeMachine } from "./helpers/fake-machine.js";
import { fixturePlugin } from "./helpers/spawn.js";

const tmp = mkdtempSync(path.join(tmpdir(), "vmm-verbose-"));
const kernel = path.join(tmp, "guest.bin");
writeFileSync(kernel, Uint8Array.of(0xf4));
const disk = path.join(tmp, "disk,1.img");
writeFileSync(disk, new Uint8Array(4096));
const fixture = fixturePlugin("fixture-plugin.mjs");

/** `vmm run ARGS`; stderr up to the moment the guest started, and all of it. */
async function run(args: string[], machineWithTopology = true): Promise<{ status: number; beforeGuest: string; err: string }> {
  const err: string[] = [];
  let beforeGuest = "";
  const ctx: CliContext = {
    cwd: tmp,
    stdout: () => {},
    stderr: (t) => err.push(t),
    signals: new EventEmitter() as unknown as CliContext["signals"],
    builtins: [{ name: "fake-virtio.mjs", load: () => import(pathToFileURL(fixturePlugin("fake-virtio.mjs")).href) }],
    machineFactory: async () => (config) => {
      const m = new FakeMachine(
        config,
        async () => {
          beforeGuest = err.join("");
          return { status: 0, reason: "shutdown" };
        },
        true,
        true,
      );
      if (!machineWithTopology) return m;
      return Object.assign(m, { pciTopology: () => m.pciBus!.topology(), pciFunctions: () => m.pciBus!.functions() });
    },
  };
  const status = await main(["run", "-k", kernel, ...args], ctx);
  return { status, beforeGuest, err: err.join("") };
}

describe("vmm run --verbose", () => {
  it("prints the machine, then every PCI function with its address, type, IDs, placement and given options", async () => {
    const r = await run([
      "--verbose", "--name", "vb", "-m", "1G", "-c", "2", "--vcpu-threads", "-p", "console=ttyS0 quiet",
      "-d", `${disk.replace(",", "\\,")},ro`,
      "--plugin", fixture,
      "--device", "pcie-root-port,id=rp1,mem-reserve=1M",
      "--device", "fixture-dev,id=7,bus=rp1",
      "--device", "fixture-dev,id=8,placement=root-port",
      "--device", "fixture-dev,id=9,placement=integrated,addr=1f",
    ]);
    expect(r.status).toBe(0);
    // All of it before the guest ran, and nothing after.
    expect(r.err).toBe(r.beforeGuest);
    expect(r.err.trimEnd().split("\n")).toEqual([
      `vmm: vb: x86_64, 1 GiB RAM, 2 vCPUs (a thread each), raw kernel ${kernel}, params "console=ttyS0 quiet", console serial`,
      "vmm: 00:00.0 host-bridge (8086:29c0) pci",
      // The fake virtio devices answer config reads with all-ones: no ID for them.
      `vmm: 00:01.0 virtio-blk0 virtio-blk (ffff:ffff) pci path=${disk.replace(",", "\\,")},readonly`,
      "vmm: 00:02.0 rp1 pcie-root-port (1b36:000c) pcie root-port id=rp1,mem-reserve=1M",
      "vmm: 01:00.0 fixture-dev0 fixture-dev (abcd:1234) pcie endpoint behind rp1 id=7,bus=rp1",
      "vmm: 00:03.0 fixture-dev1-rp (1b36:000c) pcie root-port",
      "vmm: 02:00.0 fixture-dev1 fixture-dev (abcd:1234) pcie endpoint behind fixture-dev1-rp id=8,placement=root-port",
      "vmm: 00:1f.0 fixture-dev2 fixture-dev (abcd:1234) pcie rc-integrated id=9,placement=integrated,addr=1f",
    ]);
  });

  it("names firmware and the initrd when they boot, and says so when the machine does not describe its PCI bus", async () => {
    const initrd = path.join(tmp, "initrd.img");
    writeFileSync(initrd, new Uint8Array(16));
    const r = await run(["--verbose", "--name", "nb", "-i", initrd, "--rng"], false);
    expect(r.status).toBe(0);
    expect(r.err.trimEnd().split("\n")).toEqual([
      `vmm: nb: x86_64, 256 MiB RAM, 1 vCPU, raw kernel ${kernel}, initrd ${initrd}, console serial`,
      "vmm: nb: this machine does not describe its PCI bus",
    ]);
  });

  it("prints nothing without --verbose", async () => {
    const r = await run(["--rng"]);
    expect(r.status).toBe(0);
    expect(r.err).toBe("");
  });
});
