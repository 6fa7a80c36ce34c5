/**
 * The third-party flow end to end: the quirk plugin is packed with `pnpm pack`, installed from the tarball into a
 * project outside the workspace (offline: its peer dependencies point at the workspace packages through file:
 * links), and the real `vmm` process, run from that project, resolves it by package name. Under /dev/kvm, a guest
 * program (tests/guest/guests/rtl8168-backdoor.c) drives the vfio-user test server's rtl8168 passed through with
 * `--device vfio-user,socket=...`, programming MSI-X only through the chip's back door as r8169 does: with the
 * plugin every interrupt arrives at the vector the guest programmed; without it the device's own table holds the
 * guest's message (read back through the back door, and the server logs each interrupt it sent astray) and the
 * guest gets none.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildGuest } from "@vmm/guest-kit";
import { kvmTestGate } from "@vmm/test-support";

const pluginDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const root = path.resolve(pluginDir, "../..");
const vmmBin = path.join(root, "packages/cli/bin/vmm.js");
const serverBin = path.join(root, "tools/vfio-user-server/dist/cli.js");
const guestSource = path.join(root, "tests/guest/guests/rtl8168-backdoor.c");
const tsc = createRequire(path.join(root, "package.json")).resolve("typescript/bin/tsc");

const kvmOk = kvmTestGate("@x/device-rtl8168-quirk", { what: "the back-door guest runs and the device tree" }).ok;
if (!existsSync(serverBin)) throw new Error(`${serverBin} is not built (pnpm --filter @vmm/vfio-user-server build)`);

const work = mkdtempSync(path.join(tmpdir(), "vmm-quirk-plugin-"));
const project = path.join(work, "project");
let guest = "";

interface Outcome {
  status: number | null;
  stdout: string;
  stderr: string;
}

function vmm(args: string[], cwd = project): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [vmmBin, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

interface Server {
  readonly socket: string;
  readonly process: ChildProcess;
  log(): string;
}
const servers: Array<{ child: ChildProcess; dir: string }> = [];

/** The test server's rtl8168, with --log (its lines say when an interrupt went astray). */
async function rtl8168(): Promise<Server> {
  const dir = mkdtempSync(path.join(tmpdir(), "vmm-quirk-server-"));
  const socket = path.join(dir, "rtl8168.sock");
  const child = spawn(process.execPath, [serverBin, "--socket", socket, "--device", "rtl8168", "--log"], { stdio: ["ignore", "pipe", "pipe"] });
  servers.push({ child, dir });
  let log = "";
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vfio-user-server did not listen within 10 s: ${log}`)), 10_000);
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes(`listening ${socket}`)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`vfio-user-server exited with ${code} before listening: ${log}`)));
  });
  return { socket, process: child, log: () => log };
}

afterEach(async () => {
  for (const { child, dir } of servers.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill();
      await new Promise((r) => child.once("exit", r));
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

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
        tsyringe: link(path.join(root, "packages/core/node_modules/tsyringe")),
      },
    }),
  );
  execFileSync("npm", ["install", "--offline", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts", tarball], { cwd: project, stdio: "pipe" });
  // A second, local plugin whose quirk throws when the guest writes the test engine's VECTOR register (BAR2 0x824):
  // it composes with the back door's window on the same BAR, and its throw must stop the VM naming it.
  writeFileSync(
    path.join(project, "throwing-quirk.mjs"),
    `import { PLUGIN_API_VERSION, registerQuirk } from "@vmm/core";
export default {
  name: "throwing-quirk",
  version: "1.0.0",
  apiVersion: PLUGIN_API_VERSION,
  register(container) {
    registerQuirk(container, "throwing-quirk", {
      name: "vector-trap",
      description: "throws on the engine's VECTOR register",
      match: { vendorId: 0x10ec, deviceId: 0x8168, revision: 0x15 },
      windows: () => [{ name: "VECTOR", target: { bar: 2 }, offset: 0x824, size: 4, write: () => { throw new Error("vector register jammed"); } }],
    });
  },
};
`,
  );
  guest = await buildGuest("rtl8168-backdoor", { format: "elf", source: guestSource });
}, 180_000);

/** The guest's figures: hits per vector, "backdoor-delivered", "device-raised", back-door reads and table lines. */
function figures(stdout: string) {
  const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? NaN);
  const all = (re: RegExp) => [...stdout.matchAll(re)].map((m) => m.slice(1).map((x) => Number.parseInt(x, 16)));
  return {
    hits: all(/^vector (\d+) hits (\d+)$/gm).map(([, n]) => n),
    delivered: num(/^backdoor-delivered (\d+) of 4$/m),
    raised: num(/^device-raised (\d+)$/m),
    backDoorData: all(/^backdoor-read \d+ data ([0-9a-f]+)$/gm).map(([d]) => d),
    table: all(/^table \d+ data ([0-9a-f]+) ctrl ([0-9a-f]+)$/gm),
  };
}

describe("@x/device-rtl8168-quirk installed from its tarball", () => {
  it("is installed as a package, not linked to the workspace", () => {
    const installed = path.join(project, "node_modules/@x/device-rtl8168-quirk");
    expect(realpathSync(installed)).toBe(installed);
    expect(readdirSync(installed).sort()).toEqual(["README.md", "dist", "package.json"]);
  });

  it("vmm devices, run from the project, lists its quirk with the devices it matches", async () => {
    const r = await vmm(["devices", "--plugin", "@x/device-rtl8168-quirk"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(
      "quirks, applied to matching passthrough devices (vfio-pci, vfio-user):\n" +
        "  rtl8168-msix-back-door: redirects the MSI-X back door (BAR2 0x70 data, 0x74 address) to the VMM's emulated MSI-X table\n" +
        "    from plugin @x/device-rtl8168-quirk, matches 10ec:8168\n",
    );
  });

  it("is not found from a directory that does not have it installed", async () => {
    const r = await vmm(["devices", "--plugin", "@x/device-rtl8168-quirk"], work);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^vmm: error: plugin @x\/device-rtl8168-quirk: not found from /);
  });

  describe.skipIf(!kvmOk)("under /dev/kvm, with the vfio-user test server's rtl8168", () => {
    it("vmm devices --device vfio-user,... shows the quirk applied to the passed-through device (composed with another plugin's)", async () => {
      const server = await rtl8168();
      const r = await vmm(["devices", "--plugin", "@x/device-rtl8168-quirk", "--plugin", "./throwing-quirk.mjs", "--device", `vfio-user,socket=${server.socket}`]);
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^00:[0-9a-f]{2}\.0 vfio-user0 pci .* \[quirk rtl8168-msix-back-door from @x\/device-rtl8168-quirk\] \[quirk vector-trap from throwing-quirk\]$/m);
    });

    it("with the plugin, every interrupt programmed through the back door arrives at its vector, with no userspace hop", async () => {
      const server = await rtl8168();
      const r = await vmm(["run", "-k", guest, "--plugin", "@x/device-rtl8168-quirk", "--device", `vfio-user,socket=${server.socket}`, "--stats"]);
      if (r.status !== 0) console.log(r.stdout, r.stderr);
      expect(r.stdout).toMatch(/^rtl8168-backdoor: \d+ checks, 0 failures$/m);
      expect(r.status).toBe(0);
      const f = figures(r.stdout);
      // Each vector's handler (installed at 0x60 + V, the data the guest programmed) ran exactly once.
      expect(f.hits).toEqual([1, 1, 1, 1]);
      expect(f.delivered).toBe(4);
      expect(f.raised).toBe(4);
      // The emulated table holds the guest's messages, unmasked; the back door reads them back from there.
      expect(f.table).toEqual([0x60, 0x61, 0x62, 0x63].map((d) => [d, 0]));
      expect(f.backDoorData).toEqual([0x60, 0x61, 0x62, 0x63]);
      // The device kept the host's messages: nothing went astray, and every interrupt went eventfd -> irqfd.
      expect(server.log()).not.toContain("lost");
      expect(r.stderr).toMatch(/^vmm: stats: vfio-user0: userspaceInterrupts=0 /m);
    });

    it("without the plugin, the back-door writes reach the device's own table and the guest gets no interrupt", async () => {
      const server = await rtl8168();
      const r = await vmm(["run", "-k", guest, "--device", `vfio-user,socket=${server.socket}`]);
      expect(r.stdout).toMatch(/^rtl8168-backdoor: \d+ checks, 0 failures$/m);
      expect(r.status).toBe(0);
      const f = figures(r.stdout);
      expect(f.hits).toEqual([0, 0, 0, 0]);
      expect(f.delivered).toBe(0);
      expect(f.raised).toBe(4); // the device did raise them
      // The device's own table got the guest's messages (read back through the back door, from the device) ...
      expect(f.backDoorData).toEqual([0x60, 0x61, 0x62, 0x63]);
      // ... while the VMM's emulated table never saw them: masked, no message.
      expect(f.table).toEqual([0, 0, 0, 0].map(() => [0, 1]));
      // The server sent each interrupt with the guest's message instead of the host's: astray.
      for (let v = 0; v < 4; v++) {
        expect(server.log()).toContain(`msi-x vector ${v} lost: entry ${v} holds address 0xfee00000 data 0x${(0x60 + v).toString(16)}, not the message the host programmed`);
      }
    });

    it("a quirk that throws stops the VM with one line naming its plugin and the device", async () => {
      const server = await rtl8168();
      const r = await vmm(["run", "-k", guest, "--plugin", "@x/device-rtl8168-quirk", "--plugin", "./throwing-quirk.mjs", "--device", `vfio-user,socket=${server.socket}`]);
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(
        "vmm: error: device vfio-user0 failed in BAR2 write at 0x824 (4 bytes): plugin throwing-quirk: quirk vector-trap failed on device vfio-user0 (VECTOR write at 0x824): vector register jammed\n",
      );
    });
  });
});
