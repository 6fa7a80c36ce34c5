/** `vmm devices` given devices: the PCI tree of the assembled (never run) machine, as text and as JSON. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { runDevices } from "./helpers/devices-run.js";
import { kvmOk } from "./helpers/kvm.js";
import { fixturePlugin, vmm } from "./helpers/spawn.js";

const tmp = mkdtempSync(path.join(tmpdir(), "vmm-devices-tree-"));
const disk = path.join(tmp, "disk.img");
writeFileSync(disk, new Uint8Array(4096));

interface JsonNode {
  address: string;
  name: string;
  kind: string;
  expressType?: string;
  bridge?: { secondary: number; subordinate: number };
  bars: Array<{ index: number; kind: string; address: number; size: number }>;
  children: JsonNode[];
}

/** `vmm devices ARGS` from this file's temporary directory (helpers/devices-run.ts). */
const devices = (args: string[]) => runDevices(tmp, args);

describe("vmm devices with devices (assembly without KVM: a fake machine on a real bus)", () => {
  it("assembles without a kernel, prints the tree with types and BARs, runs nothing and closes the machine", async () => {
    const r = await devices([
      "--device", "pcie-root-port,id=rp1,mem-reserve=1M,io-reserve=4K,pref64-reserve=0",
      "--device", `virtio-blk,path=${disk},bus=rp1`,
      "--rng",
      "--plugin", fixturePlugin("fixture-plugin.mjs"),
      "--device", "fixture-dev,id=7,size=8K",
    ]);
    expect(r.err).toBe("");
    expect(r.status).toBe(0);
    expect(r.machines).toHaveLength(1);
    expect(r.machines[0]!.closed).toBe(true);
    const lines = r.out.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^00:00\.0 host-bridge pci$/);
    expect(lines).toContainEqual(expect.stringMatching(/^00:0[0-9a-f]\.0 virtio-rng0 pci$/));
    // The fake machine's bus places BARs from 0xe0000000 (the root port's window comes first).
    expect(lines).toContainEqual(expect.stringMatching(/^00:0[0-9a-f]\.0 fixture-dev0 pci bar0 mem32 e[0-9a-f]{7}\/8K$/));
    expect(lines).toContainEqual(expect.stringMatching(/^00:0[0-9a-f]\.0 rp1 pcie root-port \[bridge 01-01 io [0-9a-f]+-[0-9a-f]+ mem [0-9a-f]+-[0-9a-f]+\]$/));
    // The fake virtio devices are conventional functions, so behind the root port too.
    expect(lines[lines.findIndex((l) => / rp1 /.test(l)) + 1]).toBe("└─ 01:00.0 virtio-blk0 pci");
  });

  it("--json gives the tree as data; -d and -m are taken as vmm run takes them", async () => {
    const r = await devices(["--json", "-m", "128", "-d", disk, "--device", "pcie-root-port,id=rp1", "--device", "virtio-rng,bus=rp1"]);
    expect(r.err).toBe("");
    expect(r.status).toBe(0);
    const tree = JSON.parse(r.out) as JsonNode[];
    expect(tree[0]).toMatchObject({ address: "00:00.0", name: "host-bridge", kind: "pci", children: [] });
    expect(tree.map((n) => n.name)).toContain("virtio-blk0");
    const rp = tree.find((n) => n.name === "rp1")!;
    expect(rp).toMatchObject({ kind: "pcie", expressType: "root-port", bridge: { secondary: 1, subordinate: 1 } });
    expect(rp.children).toEqual([expect.objectContaining({ address: "01:00.0", name: "virtio-rng0", kind: "pci", bars: [], children: [] })]);
    expect(r.machines[0]!.config.memory).toBe(128 * 2 ** 20);
  });

  it("without device options it still lists device types and assembles nothing; --tree shows the bare machine", async () => {
    const list = await devices([]);
    expect(list.status).toBe(0);
    expect(list.out).toMatch(/^pcie-root-port: /m);
    expect(list.machines).toHaveLength(0);
    const bare = await devices(["--tree"]);
    expect(bare.status).toBe(0);
    expect(bare.out).toBe("00:00.0 host-bridge pci\n");
  });

  it("refuses bad placements and missing disks as vmm run does", async () => {
    const bad = await devices(["--device", "virtio-rng,bus=nope"]);
    expect(bad.status).toBe(2);
    expect(bad.err).toMatch(/^vmm: error: .*bus=nope names no pcie-root-port/);
    const missing = await devices(["-d", path.join(tmp, "absent.img")]);
    expect(missing.status).toBe(1);
    expect(missing.err).toMatch(/^vmm: error: disk '.*absent\.img': no such file\n$/);
    expect(bad.machines.length + missing.machines.length).toBe(0);
  });
});

describe.skipIf(!kvmOk)("vmm devices under /dev/kvm (process)", () => {
  it("shows the host bridge, the root port and the device behind it", () => {
    const r = vmm(["devices", "--device", "pcie-root-port,id=rp1", "--device", "virtio-rng,bus=rp1"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^00:00\.0 \S+/);
    expect(lines).toContainEqual(expect.stringMatching(/^00:[0-9a-f]{2}\.0 rp1 pcie root-port \[bridge 01-01 /));
    expect(lines[lines.length - 1]).toMatch(/^└─ 01:00\.0 virtio-rng0 pcie endpoint bar\d mem/);
  });

  it("--json parses, with the device under the root port", () => {
    const r = vmm(["devices", "--json", "--device", "pcie-root-port,id=rp1", "--device", "virtio-rng,bus=rp1"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const tree = JSON.parse(r.stdout) as JsonNode[];
    expect(tree[0]!.address).toBe("00:00.0");
    const rp = tree.find((n) => n.name === "rp1")!;
    expect(rp).toMatchObject({ kind: "pcie", expressType: "root-port", bridge: { secondary: 1, subordinate: 1 } });
    expect(rp.children).toHaveLength(1);
    expect(rp.children[0]).toMatchObject({ address: "01:00.0", name: "virtio-rng0", kind: "pcie", expressType: "endpoint" });
    expect(rp.children[0]!.bars.length).toBeGreaterThan(0);
  });
});

describe.skipIf(kvmOk)("vmm devices without /dev/kvm (process)", () => {
  it("fails with one line naming why when it must assemble a machine", () => {
    const r = vmm(["devices", "--rng"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vmm: error: KVM is not usable: .+\n$/);
  });
});
