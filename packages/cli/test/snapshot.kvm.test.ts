/**
 * Snapshots as processes under /dev/kvm: `vmm snapshot` of a running guest, the VMM killed, `vmm run --restore`
 * (eager and lazy memory) finishing the guest's work with exactly the result of an uninterrupted run. The guest
 * (guests/snapshot-workload.c) rewrites an 8 MiB buffer, counts virtio-rng and virtio-blk completions and re-reads
 * the sectors it wrote earlier, so memory, vCPU, device and disk state all have to come back. The restored
 * queues run on their data-plane workers (`--stats` counts their requests).
 */
import { existsSync, mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { buildGuest } from "@vmm/guest-kit";
import { beforeAll, describe, expect, it } from "vitest";
import { kvmOk } from "./helpers/kvm.js";
import { cliDir, fixturePlugin, vmm } from "./helpers/spawn.js";
import { killVmsAfterEach, startVmm, waitFor } from "./helpers/vm-process.js";

let workload = "";
killVmsAfterEach();
const RESULT = /^result checksum=[0-9a-f]+ memory=[0-9a-f]+ disk=[0-9a-f]+ rng=300 blk=\d+$/m;

/** A work directory with a fresh 1 MiB disk image and its own XDG_RUNTIME_DIR. */
function workDir() {
  const dir = mkdtempSync(path.join(tmpdir(), "vmm-snapshot-"));
  writeFileSync(path.join(dir, "disk.img"), new Uint8Array(1 << 20));
  return { dir, env: { ...process.env, XDG_RUNTIME_DIR: dir } };
}

const start = (args: string[], env: NodeJS.ProcessEnv, cwd: string) => startVmm(args, { cwd, env });
/** The workload runs for tens of seconds on this project's emulating hosts. */
const LONG = 60_000;

const resultLine = (out: string) => RESULT.exec(out)?.[0];

describe.skipIf(!kvmOk)("vmm snapshot and vmm run --restore under /dev/kvm", () => {
  let uninterrupted = "";

  beforeAll(async () => {
    workload = await buildGuest("snapshot-workload", { format: "elf", source: path.join(cliDir, "guests/snapshot-workload.c") });
    // The reference: the same workload on the same kind of fresh disk, never interrupted.
    const { dir, env } = workDir();
    const vm = start(["-k", workload, "--rng", "-d", "disk.img", "--name", "reference"], env, dir);
    expect(await vm.exit, vm.stderr).toBe(0);
    uninterrupted = resultLine(vm.stdout) ?? "";
    expect(uninterrupted, vm.stdout).toMatch(RESULT);
  }, 240_000);

  for (const memory of ["eager", "lazy"] as const) {
    it(`a guest snapshotted mid-run, its VMM killed, restored with ${memory} memory finishes with the uninterrupted result`, async () => {
      const { dir, env } = workDir();
      const vm = start(["-k", workload, "--rng", "-d", "disk.img", "--name", "wl"], env, dir);
      await waitFor(() => vm.stdout.includes("round 100\n") || vm.child.exitCode !== null, "the guest reached round 100", LONG);
      const snap = vmm(["snapshot", "wl", "snap"], { env, cwd: dir });
      expect(snap.stderr).toBe("");
      expect(snap.status).toBe(0);
      expect(snap.stdout).toMatch(new RegExp(`^wl: snapshot in ${path.join(dir, "snap").replace(/[/.]/g, "\\$&")}: 256 MiB of RAM \\(\\d+ MiB not zero\\) in \\d+ ms; running\\n$`));
      // The VM ran on after the snapshot; kill it (no clean shutdown) and start again from the snapshot.
      vm.child.kill("SIGKILL");
      await vm.exit;
      expect(readdirSync(path.join(dir, "snap")).sort()).toEqual(["memory.bin", "snapshot.json"]);
      const file = statSync(path.join(dir, "snap", "memory.bin"));
      expect(file.size).toBe(256 << 20);
      expect(file.blocks * 512).toBeLessThan(64 << 20); // sparse: the guest touched a few MiB of its 256

      const restored = start(["--restore", "snap", "--restore-memory", memory, "--stats"], env, dir);
      expect(await restored.exit, restored.stderr).toBe(0);
      // The restored queues ran on their data-plane workers, which touch guest RAM through the machine's own
      // mapping (with lazy memory, pages the worker reads first are filled through userfaultfd too).
      for (const device of ["virtio-blk0", "virtio-rng0"]) {
        const requests = new RegExp(`^vmm: stats: ${device}: queue0WorkerRequests=(\\d+) `, "m").exec(restored.stderr);
        expect(Number(requests?.[1]), restored.stderr).toBeGreaterThan(0);
      }
      expect(restored.stderr.replace(/^vmm: stats: .*\n/gm, "")).toBe("");
      // It goes on where the snapshot was taken (after round 100: no "workload: started" again) to the same end.
      expect(restored.stdout).not.toContain("workload: started");
      expect(restored.stdout).toMatch(/^round (1[2-9]|2\d)0$/m);
      expect(resultLine(restored.stdout)).toBe(uninterrupted);
    }, 240_000);
  }

  it("a plugin device that does not save its state makes vmm snapshot refuse, naming it, with nothing written; the VM runs on", async () => {
    const { dir, env } = workDir();
    const vm = start(["-k", workload, "--rng", "-d", "disk.img", "--name", "pl", "--plugin", fixturePlugin("fixture-plugin.mjs"), "--device", "fixture-dev,id=7"], env, dir);
    await waitFor(() => vm.stdout.includes("round 20\n") || vm.child.exitCode !== null, "the guest reached round 20", LONG);
    const r = vmm(["snapshot", "pl", "snap"], { env, cwd: dir });
    expect(r).toMatchObject({ status: 1, stdout: "" });
    expect(r.stderr).toBe("vmm: error: fixture-dev0: this device cannot be snapshotted (FixtureDevice does not save its own state: it overrides no saveDeviceState)\n");
    expect(existsSync(path.join(dir, "snap"))).toBe(false);
    await waitFor(() => vm.stdout.includes("round 60\n"), "the guest ran on after the refused snapshot", LONG);
    expect(vmm(["list", "--json"], { env }).stdout).toContain('"state": "running"');
  }, 240_000);

  it("snapshot --stop ends the VM; a directory with files in it is refused and left alone; restore refuses other machine options", async () => {
    const { dir, env } = workDir();
    const vm = start(["-k", workload, "--rng", "-d", "disk.img", "--name", "st"], env, dir);
    await waitFor(() => vm.stdout.includes("round 20\n"), "the guest reached round 20", LONG);
    const refused = vmm(["snapshot", "st", "."], { env, cwd: dir });
    expect(refused).toMatchObject({ status: 1, stdout: "" });
    expect(refused.stderr).toBe(`vmm: error: '${dir}' is not empty: a snapshot goes into a new or empty directory (nothing is overwritten)\n`);
    expect(existsSync(path.join(dir, "memory.bin"))).toBe(false);
    const stopped = vmm(["snapshot", "st", "snap", "--stop"], { env, cwd: dir });
    expect(stopped.status, stopped.stderr).toBe(0);
    expect(stopped.stdout).toMatch(/; stopping\n$/);
    expect(await vm.exit).toBe(143);
    const mixed = vmm(["run", "--restore", "snap", "-m", "512"], { env, cwd: dir });
    expect(mixed.status).toBe(2);
    expect(mixed.stderr).toBe(
      "vmm: error: --restore takes the machine (kernel, memory, vCPUs, devices) from the snapshot; --mem cannot be given with it (only --name, --restore-memory, --verbose, --stats, --idle-notice, --debug)\n",
    );
    const missing = vmm(["run", "--restore", "nowhere"], { env, cwd: dir });
    expect(missing.stderr).toBe(`vmm: error: '${path.join(dir, "nowhere")}' is not a snapshot (no snapshot.json)\n`);
    expect(missing.status).toBe(1);
  }, 240_000);
});
