import type { MachineFactory } from "./arch/machine.js";
import type { BuiltinPlugin } from "./plugins/builtin.js";
import { tapWrites } from "./idle-notice.js";

/** Where a command runs: its I/O, working directory and replaceable parts (tests inject machines and plugins). */
export interface CliContext {
  readonly cwd: string;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** The machine factory of an architecture; defaults to the real one (ARCHITECTURES). */
  readonly machineFactory?: (arch: string) => Promise<MachineFactory>;
  /** The built-in plugins (each with the device types it provides, when known); defaults to BUILTIN_PLUGINS. */
  readonly builtins?: readonly BuiltinPlugin[];
  /** Where SIGINT/SIGTERM come from; defaults to the process. */
  readonly signals?: Pick<NodeJS.Process, "on" | "off">;
  /**
   * Calls `onOutput` whenever the guest writes to the console (vmm's stdout); returns the function that stops
   * watching. Without it there is no idle notice (`--idle-notice` would have nothing to go by).
   */
  readonly watchConsole?: (onOutput: () => void) => () => void;
  /** Whether stderr is a terminal: `--idle-notice` is on by default only then. */
  readonly stderrIsTerminal?: boolean;
}

export function processContext(): CliContext {
  return {
    cwd: process.cwd(),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    watchConsole: (onOutput) => tapWrites(process.stdout, onOutput),
    stderrIsTerminal: process.stderr.isTTY === true,
  };
}
