import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { RawClient } from "./client.js";

const packageDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CLI = join(packageDir, "dist", "cli.js");

/** The tests run the built server: fail clearly when it is missing or older than its sources. */
export function checkBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm --filter @vmm/vfio-user-server build first`);
  // tsc -b rewrites only the outputs that changed, so compare the newest of each side.
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  if (newest(join(packageDir, "src")) > newest(join(packageDir, "dist")) + 1000) throw new Error("dist/ is older than src/: run pnpm --filter @vmm/vfio-user-server build first");
}

export interface RunningServer {
  readonly child: ChildProcess;
  readonly path: string;
  readonly stderr: () => string;
  /** Resolves with the exit status (or the signal's name). */
  readonly exited: Promise<number | string>;
  connect(): RawClient;
  stop(): void;
}

const dirs: string[] = [];

/** Starts `vfio-user-server --device NAME ...` on a fresh socket path and waits for its "listening" line. */
export async function startServer(device: string, extra: readonly string[] = [], path?: string): Promise<RunningServer> {
  const socket = path ?? join(mkdtempSync(join(tmpdir(), "vfio-user-server-")), "sock");
  if (!path) dirs.push(dirname(socket));
  const child = spawn(process.execPath, [CLI, "--socket", socket, "--device", device, ...extra], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal ?? -1)));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes(`listening ${socket}\n`)) resolve();
    });
    void exited.then((status) => reject(new Error(`server exited (${status}) before listening: ${stderr}`)));
  });
  return {
    child,
    path: socket,
    stderr: () => stderr,
    exited,
    connect: () => new RawClient(socket),
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

export function removeSocketDirs(): void {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}
