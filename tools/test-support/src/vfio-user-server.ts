// The repository's vfio-user test server (tools/vfio-user-server) as a process, for the suites that attach its
// devices to a guest with `vmm run --device vfio-user,socket=...` (tests/guest, tests/linux). It is found through
// the repository's layout, not as a dependency: that package's own tests depend on this one.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** tools/vfio-user-server's built command (the same path from this package's src/ and dist/). */
export const vfioUserServerBin = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "vfio-user-server", "dist", "cli.js");

/** Why the test server cannot be started here (it is not built), or undefined when it can. */
export function vfioUserServerMissing(): string | undefined {
  return existsSync(vfioUserServerBin) ? undefined : `${vfioUserServerBin} is not built (pnpm --filter @vmm/vfio-user-server build)`;
}

export interface VfioUserServer {
  readonly device: string;
  readonly socket: string;
  readonly process: ChildProcess;
  /** Resolves with the server's exit status once it exited. */
  readonly exited: Promise<number | null>;
  /** What the server wrote on stderr so far. */
  stderr(): string;
  /** Ends the server (SIGTERM unless it already exited) and removes the temporary directory it was given. */
  stop(): Promise<void>;
}

export interface VfioUserServerOptions {
  /** Where to listen; default a fresh temporary directory's `NAME.sock`. A server serves one client and removes
   *  its socket when it accepts, so a test that runs the guest again starts a new server, here on the same path. */
  socket?: string;
  /** More command-line options (`--dma messages`, `--log`). */
  args?: readonly string[];
}

/** Starts `vfio-user-server --device NAME` and waits until it listens (10 s at most). */
export async function startVfioUserServer(device: string, options: VfioUserServerOptions = {}): Promise<VfioUserServer> {
  const dir = options.socket === undefined ? mkdtempSync(join(tmpdir(), "vmm-vfio-user-")) : undefined;
  const socket = options.socket ?? join(dir!, `${device}.sock`);
  const args = [vfioUserServerBin, "--socket", socket, "--device", device, ...(options.args ?? [])];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
    await exited;
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`vfio-user-server --device ${device} did not listen within 10 s: ${stderr}`)), 10_000);
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes(`listening ${socket}`)) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`vfio-user-server --device ${device} exited with ${code} before listening: ${stderr}`));
      });
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { device, socket, process: child, exited, stderr: () => stderr, stop };
}
