import type { MachineFactory } from "./arch/machine.js";
import type { BUILTIN_PLUGINS } from "./plugins/builtin.js";

/** Where a command runs: its I/O, working directory and replaceable parts (tests inject machines and plugins). */
export interface CliContext {
  readonly cwd: string;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** The machine factory of an architecture; defaults to the real one (ARCHITECTURES). */
  readonly machineFactory?: (arch: string) => Promise<MachineFactory>;
  /** The built-in plugins; defaults to BUILTIN_PLUGINS. */
  readonly builtins?: typeof BUILTIN_PLUGINS;
  /** Where SIGINT/SIGTERM come from; defaults to the process. */
  readonly signals?: Pick<NodeJS.Process, "on" | "off">;
}

export function processContext(): CliContext {
  return {
    cwd: process.cwd(),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
  };
}
