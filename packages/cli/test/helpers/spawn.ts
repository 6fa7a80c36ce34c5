import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const cliDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const bin = path.join(cliDir, "bin/vmm.js");
export const fixtures = path.join(cliDir, "test/fixtures");
export const fixturePlugin = (name: string) => path.join(fixtures, "plugins", name);

export interface Outcome {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real vmm process (the built bin) and waits for it. */
export function vmm(args: readonly string[], options: { cwd?: string; timeout?: number; env?: NodeJS.ProcessEnv } = {}): Outcome {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: options.cwd ?? cliDir,
    encoding: "utf8",
    timeout: options.timeout ?? 30_000,
    env: options.env ? { ...process.env, ...options.env } : undefined,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
