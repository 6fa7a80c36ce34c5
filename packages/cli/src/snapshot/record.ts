// What `vmm snapshot` records beside the machine's state, and how `vmm run --restore` uses it: the vmm and plugin
// versions (a restore refuses others), the `vmm run` options the machine was assembled from, and the directory
// its relative paths (kernel, disks) were given from.
import { SnapshotError, type StateValue } from "@vmm/core";
import { UsageError } from "../errors.js";
import { DEFAULT_ARCH, DEFAULT_CPUS, DEFAULT_MEMORY, type RawRunOptions } from "../options/run-config.js";

export interface SnapshotRecord {
  readonly vmm: string;
  readonly plugins: ReadonlyArray<{ readonly name: string; readonly version: string }>;
  readonly run: RawRunOptions;
  readonly cwd: string;
}

/** The options `--restore` may be given with: they change how this process runs, not what the machine is. */
const RESTORE_COMPATIBLE = new Set<keyof RawRunOptions>(["restore", "restoreMemory", "name", "verbose", "debug", "stats", "idleNotice"]);
/** Options commander fills in with their default: given with --restore only when they differ from it. */
const DEFAULTS: Partial<Record<keyof RawRunOptions, string>> = { mem: DEFAULT_MEMORY, cpus: DEFAULT_CPUS, arch: DEFAULT_ARCH, console: "serial" };
/** The run options the restored machine takes from this process, not from the snapshot. */
const PER_PROCESS: ReadonlyArray<keyof RawRunOptions> = ["restore", "restoreMemory", "verbose", "debug", "stats", "idleNotice", "name"];

export function snapshotRecord(vmm: string, plugins: SnapshotRecord["plugins"], run: RawRunOptions, cwd: string): StateValue {
  const machine = Object.fromEntries(Object.entries(run).filter(([k, v]) => v !== undefined && !PER_PROCESS.includes(k as keyof RawRunOptions)));
  return { vmm, plugins: plugins.map((p) => ({ name: p.name, version: p.version })), run: { ...machine, ...(run.name ? { name: run.name } : {}) }, cwd } as unknown as StateValue;
}

/**
 * The run options of a restore: the snapshot's, with this invocation's per-process options (and --name) on top.
 * Any other option given with --restore is refused: the machine must be the one the snapshot was taken of.
 */
export function restoreRunOptions(record: SnapshotRecord, given: RawRunOptions): RawRunOptions {
  const extra = (Object.keys(given) as Array<keyof RawRunOptions>).filter(
    (k) => given[k] !== undefined && !RESTORE_COMPATIBLE.has(k) && !(k in DEFAULTS && given[k] === DEFAULTS[k]),
  );
  if (extra.length) {
    throw new UsageError(
      `--restore takes the machine (kernel, memory, vCPUs, devices) from the snapshot; ${extra.map(flagOf).join(", ")} cannot be given with it (only --name, --restore-memory, --verbose, --stats, --idle-notice, --debug)`,
    );
  }
  const own = Object.fromEntries(PER_PROCESS.filter((k) => given[k] !== undefined).map((k) => [k, given[k]]));
  return { ...record.run, ...own };
}

/** Reads the record back from a manifest's `extra`, refusing another vmm version. */
export function readSnapshotRecord(extra: unknown, dir: string, vmm: string): SnapshotRecord {
  const r = extra as Partial<SnapshotRecord> | null;
  if (!r || typeof r !== "object" || typeof r.vmm !== "string" || !Array.isArray(r.plugins) || !r.run || typeof r.run !== "object" || typeof r.cwd !== "string") {
    throw new SnapshotError(`${dir}: the snapshot does not say how its VM was run (not taken by vmm snapshot?)`);
  }
  if (r.vmm !== vmm) throw new SnapshotError(`${dir}: the snapshot was taken by vmm ${r.vmm}; this is vmm ${vmm}, which cannot vouch for its state`);
  return r as SnapshotRecord;
}

/** Refuses a restore whose plugins are not the versions the snapshot was taken with. */
export function checkPluginVersions(record: SnapshotRecord, loaded: ReadonlyArray<{ readonly name: string; readonly version: string }>, dir: string): void {
  const now = new Map(loaded.map((p) => [p.name, p.version]));
  for (const p of record.plugins) {
    const version = now.get(p.name);
    if (version === undefined) throw new SnapshotError(`${dir}: the snapshot's VM used plugin ${p.name} ${p.version}, which is not loaded now`);
    if (version !== p.version) throw new SnapshotError(`${dir}: the snapshot's VM used plugin ${p.name} ${p.version}; ${version} is loaded now`);
  }
}

function flagOf(key: string): string {
  return "--" + key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}
