// `vmm run` as a child process the test watches: its output collected as it comes, killed after the test if it
// still runs, and a wait for what it prints.
import { spawn, type ChildProcess } from "node:child_process";
import { afterEach } from "vitest";
import { bin } from "./spawn.js";

export interface VmProcess {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  /** The exit code (null after a signal). */
  readonly exit: Promise<number | null>;
}

const children: ChildProcess[] = [];

/** Registers the afterEach that kills what a test left running (call once at the top of a test file). */
export function killVmsAfterEach(): void {
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
}

/** Starts `vmm run ARGS` (not waited for). */
export function startVmm(args: readonly string[], options: { cwd: string; env: NodeJS.ProcessEnv }): VmProcess {
  const child = spawn(process.execPath, [bin, "run", ...args], { cwd: options.cwd, env: options.env });
  children.push(child);
  const vm = { child, stdout: "", stderr: "", exit: new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code))) };
  child.stdout!.on("data", (b: Buffer) => (vm.stdout += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (vm.stderr += b.toString()));
  return vm;
}

/** Polls `check` until it holds; throws naming `what` after `ms`. */
export async function waitFor(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
