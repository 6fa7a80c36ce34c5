// What `vmm snapshot` records beside the machine and how `vmm run --restore` reads it back, without KVM.
import { SnapshotError } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { checkPluginVersions, readSnapshotRecord, restoreRunOptions, snapshotRecord, type SnapshotRecord } from "../src/snapshot/record.js";

const run = { kernel: "k.elf", mem: "512", cpus: "2", disk: ["d.img"], rng: true, name: "web", stats: true, verbose: true, arch: "x86_64", console: "serial" };

describe("the snapshot record", () => {
  it("keeps the machine's options and the name, not this process's (stats, verbose, restore)", () => {
    const record = snapshotRecord("0.1.0", [{ name: "@vmm/device-virtio", version: "0.2.0" }], { ...run, restore: "old", restoreMemory: "lazy" }, "/work");
    expect(record).toEqual({
      vmm: "0.1.0",
      plugins: [{ name: "@vmm/device-virtio", version: "0.2.0" }],
      run: { kernel: "k.elf", mem: "512", cpus: "2", disk: ["d.img"], rng: true, name: "web", arch: "x86_64", console: "serial" },
      cwd: "/work",
    });
  });

  it("a restore takes the snapshot's machine with this invocation's name and per-process options; other options are refused", () => {
    const record = readSnapshotRecord(JSON.parse(JSON.stringify(snapshotRecord("0.1.0", [], run, "/w"))), "/s", "0.1.0");
    // Commander fills defaults in: -m 256, -c 1, --arch, --console equal to the defaults are not "given".
    const given = { restore: "/s", restoreMemory: "lazy", name: "copy", stats: true, mem: "256", cpus: "1", arch: "x86_64", console: "serial" };
    expect(restoreRunOptions(record, given)).toEqual({ ...record.run, restore: "/s", restoreMemory: "lazy", name: "copy", stats: true });
    expect(() => restoreRunOptions(record, { restore: "/s", mem: "1G", disk: ["other.img"] })).toThrow(
      "--restore takes the machine (kernel, memory, vCPUs, devices) from the snapshot; --mem, --disk cannot be given with it (only --name, --restore-memory, --verbose, --stats, --idle-notice, --debug)",
    );
  });

  it("is refused from another vmm version, when malformed, and with plugins missing or of other versions", () => {
    const record = snapshotRecord("0.1.0", [{ name: "p", version: "1.0.0" }], run, "/w") as unknown as SnapshotRecord;
    expect(() => readSnapshotRecord(record, "/s", "0.2.0")).toThrow(new SnapshotError("/s: the snapshot was taken by vmm 0.1.0; this is vmm 0.2.0, which cannot vouch for its state"));
    expect(() => readSnapshotRecord(null, "/s", "0.1.0")).toThrow("/s: the snapshot does not say how its VM was run (not taken by vmm snapshot?)");
    expect(() => checkPluginVersions(record, [{ name: "p", version: "1.0.0" }, { name: "q", version: "2.0.0" }], "/s")).not.toThrow();
    expect(() => checkPluginVersions(record, [{ name: "p", version: "1.0.1" }], "/s")).toThrow("/s: the snapshot's VM used plugin p 1.0.0; 1.0.1 is loaded now");
    expect(() => checkPluginVersions(record, [], "/s")).toThrow("/s: the snapshot's VM used plugin p 1.0.0, which is not loaded now");
  });
});
