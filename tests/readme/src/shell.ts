// Runs a README command line as the reader would, through bash, with `vmm` on PATH as the README means it
// (packages/cli/bin/vmm.js of the copy being tested).
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Writes `dir/vmm`, a shim that runs `repository`'s packages/cli/bin/vmm.js, and returns `dir`. */
export function writeVmmShim(dir: string, repository: string): string {
  mkdirSync(dir, { recursive: true });
  const shim = join(dir, "vmm");
  writeFileSync(shim, `#!/bin/sh\nexec node '${join(repository, "packages/cli/bin/vmm.js")}' "$@"\n`);
  chmodSync(shim, 0o755);
  return dir;
}

export interface ShellResult {
  /** Exit status, or null when it was stopped (by `until` or the timeout). */
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Why it was stopped: "until" (the output matched), "timeout", or undefined when it exited by itself. */
  readonly stopped?: "until" | "timeout";
  readonly seconds: number;
}

export interface ShellOptions {
  readonly cwd: string;
  /** Directories put in front of PATH (the vmm shim's). */
  readonly path: readonly string[];
  readonly timeoutMs: number;
  /** Stop the command (its whole process group) once stdout and stderr together match this. */
  readonly until?: RegExp;
}

export function runShell(command: string, options: ShellOptions): Promise<ShellResult> {
  const started = performance.now();
  const env = { ...process.env, PATH: [...options.path, process.env.PATH].join(":"), FORCE_COLOR: "0" };
  // Its own process group, so stopping it stops what it started (pnpm's children, the VM).
  const child = spawn("bash", ["-c", command], { cwd: options.cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let stopped: ShellResult["stopped"];
  const stop = (why: "until" | "timeout") => {
    if (stopped || child.exitCode !== null) return;
    stopped = why;
    try {
      process.kill(-child.pid!, "SIGTERM");
    } catch {
      // already gone
    }
  };
  const timer = setTimeout(() => stop("timeout"), options.timeoutMs);
  const watch = () => {
    if (options.until?.test(stdout + stderr)) stop("until");
  };
  child.stdout.on("data", (d: Buffer) => ((stdout += d.toString()), watch()));
  child.stderr.on("data", (d: Buffer) => ((stderr += d.toString()), watch()));
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const seconds = Math.round((performance.now() - started) / 100) / 10;
      resolve({ status: stopped ? null : code, stdout, stderr, stopped, seconds });
    });
  });
}
