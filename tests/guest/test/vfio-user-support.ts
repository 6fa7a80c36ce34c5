import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
/** The vmm command as a user runs it, and the repository's vfio-user test server. */
export const vmmBin = join(root, "packages", "cli", "bin", "vmm.js");
export const serverBin = join(root, "tools", "vfio-user-server", "dist", "cli.js");

/** Why the vfio-user guest tests cannot run here, or undefined when they can. */
export function vfioUserMissing(): string | undefined {
  if (!existsSync(serverBin)) return `${serverBin} is not built (pnpm --filter @vmm/vfio-user-server build)`;
  if (!existsSync(join(root, "packages", "cli", "dist", "main.js"))) return "packages/cli is not built (pnpm --filter @vmm/cli build)";
  return undefined;
}

export interface DeviceServer {
  readonly socket: string;
  readonly process: ChildProcess;
  /** Resolves with the server's exit status once it exited. */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Starts `vfio-user-server --device NAME` on a fresh socket and waits until it listens. */
export async function startServer(device: string, extra: readonly string[] = []): Promise<DeviceServer> {
  const dir = mkdtempSync(join(tmpdir(), "vmm-vfio-user-"));
  const socket = join(dir, `${device}.sock`);
  const child = spawn(process.execPath, [serverBin, "--socket", socket, "--device", device, ...extra], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
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
  return {
    socket,
    process: child,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface VmmRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `vmm ARGS` as a process; `onOutput` sees stdout as it arrives (to act on the guest's progress). */
export function runVmm(args: readonly string[], onOutput?: (stdoutSoFar: string) => void, timeoutMs = 240_000): Promise<VmmRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [vmmBin, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      onOutput?.(stdout);
    });
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** `vmm: stats: NAME: key=value ...` lines of a --stats run, by name. */
export function statsOf(stderr: string): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const m of stderr.matchAll(/^vmm: stats: ([^:]+): (.*)$/gm)) {
    out.set(m[1]!, Object.fromEntries(m[2]!.split(" ").map((kv) => kv.split("=")).map(([k, v]) => [k!, Number(v)])));
  }
  return out;
}
