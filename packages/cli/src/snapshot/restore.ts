// `vmm run --restore DIR`: reads the snapshot before anything is built, gives the run the options the snapshot's VM
// was assembled from, and puts the snapshot into the machine once it is assembled.
import path from "node:path";
import { SnapshotError, type Logger } from "@vmm/core";
import type { VirtualMachine } from "../arch/machine.js";
import type { CliContext } from "../context.js";
import { UsageError } from "../errors.js";
import type { RawRunOptions } from "../options/run-config.js";
import { cliVersion } from "../commands/version.js";
import { checkPluginVersions, readSnapshotRecord, restoreRunOptions } from "./record.js";

export const RESTORE_MEMORY = ["eager", "lazy"] as const;
export type RestoreMemoryMode = (typeof RESTORE_MEMORY)[number];

export interface Restore {
  readonly dir: string;
  /** The run options to assemble the machine from. */
  readonly run: RawRunOptions;
  /** Puts the snapshot into the assembled machine (after checking the plugins' versions). */
  into(machine: VirtualMachine, plugins: ReadonlyArray<{ name: string; version: string }>, logger: Logger): void;
}

export async function openRestore(given: RawRunOptions, ctx: CliContext): Promise<Restore> {
  const memory = (given.restoreMemory ?? "eager") as RestoreMemoryMode;
  if (!RESTORE_MEMORY.includes(memory)) throw new UsageError(`--restore-memory '${given.restoreMemory}': expected ${RESTORE_MEMORY.join(" or ")}`);
  if (!given.restore) throw new UsageError("--restore needs a snapshot directory");
  const dir = path.resolve(ctx.cwd, given.restore);
  // Snapshots are of x86_64 machines (the only ones that take them); their format is @vmm/machine's.
  const { loadSnapshot } = await import("@vmm/machine");
  const snapshot = loadSnapshot(dir);
  const record = readSnapshotRecord(snapshot.manifest.extra, dir, cliVersion());
  const run = restoreRunOptions(record, given);
  if (record.cwd !== process.cwd()) {
    try {
      process.chdir(record.cwd);
    } catch (error) {
      throw new SnapshotError(`${dir}: the snapshot's VM was run from '${record.cwd}', where its relative paths lead, and that directory cannot be entered: ${(error as Error).message}`);
    }
  }
  return {
    dir,
    run,
    into(machine, plugins, logger) {
      checkPluginVersions(record, plugins, dir);
      if (!machine.restoreSnapshot) throw new SnapshotError(`${dir}: this machine cannot be restored from a snapshot`);
      const started = performance.now();
      machine.restoreSnapshot(snapshot, memory);
      logger.debug(`restored ${dir} (${memory} memory) in ${(performance.now() - started).toFixed(1)} ms`);
    },
  };
}
