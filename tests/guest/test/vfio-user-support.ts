import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startVfioUserServer, type VfioUserServer, vfioUserServerMissing } from "@vmm/test-support";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
/** The vmm command as a user runs it. */
export const vmmBin = join(root, "packages", "cli", "bin", "vmm.js");

/** Why the vfio-user guest tests cannot run here, or undefined when they can. */
export function vfioUserMissing(): string | undefined {
  const server = vfioUserServerMissing();
  if (server) return server;
  if (!existsSync(join(root, "packages", "cli", "dist", "main.js"))) return "packages/cli is not built (pnpm --filter @vmm/cli build)";
  return undefined;
}

/** A running vfio-user test server (test-support's). */
export type DeviceServer = VfioUserServer;

/** Starts `vfio-user-server --device NAME` on a fresh socket and waits until it listens. */
export function startServer(device: string, extra: readonly string[] = []): Promise<DeviceServer> {
  return startVfioUserServer(device, { args: extra });
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
