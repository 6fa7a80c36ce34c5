/**
 * The third-party flow end to end: the plugin is packed with `pnpm pack`, installed from the tarball into a
 * project outside the workspace (offline: its peer dependencies point at the workspace packages through file:
 * links), and the real `vmm` process, run from that project, resolves it by package name, lists its device type
 * and runs a guest program that finds and exercises the device under /dev/kvm.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { buildGuest } from "@vmm/guest-kit";
import { kvmTestGate } from "@vmm/test-support";

const pluginDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const root = path.resolve(pluginDir, "../..");
const vmmBin = path.join(root, "packages/cli/bin/vmm.js");
const tsc = createRequire(path.join(root, "package.json")).resolve("typescript/bin/tsc");

const kvmOk = kvmTestGate("@x/device-pci-testdev", { what: "the pci-testdev guest run" }).ok;

const work = mkdtempSync(path.join(tmpdir(), "vmm-third-party-"));
const project = path.join(work, "project");
let guest = "";

function vmm(args: string[], cwd = project) {
  const r = spawnSync(process.execPath, [vmmBin, ...args], { cwd, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  // The plugin's dist (what gets packed) and the cli's dist (what bin/vmm.js runs).
  execFileSync(process.execPath, [tsc, "-b"], { cwd: pluginDir, stdio: "inherit" });
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: path.join(root, "packages/cli"), stdio: "inherit" });
  execFileSync("pnpm", ["pack", "--pack-destination", work], { cwd: pluginDir, stdio: "pipe" });
  const tarball = path.join(work, readdirSync(work).find((f) => f.endsWith(".tgz"))!);

  mkdirSync(project);
  const link = (p: string) => `file:${realpathSync(p)}`;
  writeFileSync(
    path.join(project, "package.json"),
    JSON.stringify({
      name: "third-party-project",
      version: "1.0.0",
      private: true,
      dependencies: {
        "@vmm/core": link(path.join(root, "packages/core")),
        "@vmm/pci": link(path.join(root, "packages/pci")),
        tsyringe: link(path.join(root, "packages/core/node_modules/tsyringe")),
      },
    }),
  );
  execFileSync("npm", ["install", "--offline", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts", tarball], {
    cwd: project,
    stdio: "pipe",
  });
  guest = await buildGuest("pci-testdev", { format: "elf", source: path.join(pluginDir, "guest/pci-testdev.c") });
}, 180_000);

describe("@x/device-pci-testdev installed from its tarball", () => {
  it("is installed as a package, not linked to the workspace", () => {
    const installed = path.join(project, "node_modules/@x/device-pci-testdev");
    expect(realpathSync(installed)).toBe(installed);
    expect(readdirSync(installed).sort()).toEqual(["README.md", "dist", "guest", "package.json"]);
  });

  it("vmm devices, run from the project, lists its device type and options", () => {
    const r = vmm(["devices", "--plugin", "@x/device-pci-testdev"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("pci-testdev: PCI test device");
    expect(r.stdout).toContain("from plugin @x/device-pci-testdev");
    expect(r.stdout).toMatch(/^ {2}vectors\s+integer 1\.\.64\s+4\s+number of MSI-X vectors$/m);
  });

  it("is not found from a directory that does not have it installed", () => {
    const r = vmm(["devices", "--plugin", "@x/device-pci-testdev"], work);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vmm: error: plugin @x\/device-pci-testdev: not found from /);
  });

  it("refuses bad device options naming the plugin", () => {
    const r = vmm(["run", "-k", guest, "--plugin", "@x/device-pci-testdev", "--device", "pci-testdev,vectors=100"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("vmm: error: plugin @x/device-pci-testdev: device pci-testdev0: option 'vectors': 100 is above the maximum 64\n");
  });

  describe.skipIf(!kvmOk)("under /dev/kvm", () => {
    it("vmm run --plugin @x/device-pci-testdev --device pci-testdev runs a guest that finds and exercises it", () => {
      const r = vmm(["run", "-k", guest, "--plugin", "@x/device-pci-testdev", "--device", "pci-testdev"]);
      expect(r.stderr).toBe("");
      expect(r.stdout).toMatch(/^ {2}00:[0-9a-f]{2}\.0 7e57:0001 class ff0000$/m);
      expect(r.stdout).not.toContain("FAIL");
      expect(r.stdout).toContain("pci-testdev: MSI-X interrupts received: ok");
      expect(r.stdout).toContain("pci-testdev: PASS");
      expect(r.status).toBe(0);
    });

    it("device options reach the device: another ID register value makes the guest's ID check fail", () => {
      const r = vmm(["run", "-k", guest, "--plugin", "@x/device-pci-testdev", "--device", "pci-testdev,id=0x1234"]);
      expect(r.stdout).toContain("pci-testdev: ID through memory: FAIL (got 00001234, want 54534554)");
      expect(r.status).toBe(1);
    });

    it("the guest fails (exit 1) when the device is not there", () => {
      const r = vmm(["run", "-k", guest]);
      expect(r.stdout).toContain("pci-testdev: FAIL: device 7e57:0001 not found");
      expect(r.status).toBe(1);
    });
  });
});
