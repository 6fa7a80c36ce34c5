// A snapshot directory: `snapshot.json` (this manifest: the machine's shape and every component's state) and
// `memory.bin` (guest RAM, sparse). The manifest is written last, so a directory without it is not a snapshot.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeSync } from "node:fs";
import path from "node:path";
import { SnapshotError, type DeviceState, type StateValue } from "@vmm/core";
import type { MemoryImageRegion } from "./memory-image.js";

export const SNAPSHOT_FORMAT = "vmm-snapshot";
export const SNAPSHOT_FORMAT_VERSION = 1;
export const MANIFEST_FILE = "snapshot.json";
export const MEMORY_FILE = "memory.bin";

export interface SnapshotManifest {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly formatVersion: number;
  readonly createdAt: string;
  /** The machine's shape: a restore builds the same one. */
  readonly machine: { readonly name: string; readonly arch: "x86_64"; readonly memory: number; readonly cpus: number };
  readonly memory: { readonly file: string; readonly regions: readonly MemoryImageRegion[]; readonly dataBytes: number };
  readonly vcpus: readonly DeviceState[];
  /** KVM's VM-wide state (irqchip, PIT, clock). */
  readonly kvm: DeviceState;
  /** The platform devices by name (serial0, i8042, cmos-rtc, ...). */
  readonly platform: { readonly [name: string]: DeviceState };
  /** The PCI bus: every function's state (see @vmm/pci). */
  readonly pci: StateValue;
  /** What the caller recorded (the cli: vmm and plugin versions, the run options). */
  readonly extra: StateValue;
}

/**
 * Makes `dir` for a new snapshot: created if absent (its parent must exist), or taken if it is an empty directory.
 * A directory with anything in it is refused, so a snapshot never overwrites files.
 */
export function prepareSnapshotDir(dir: string): { created: boolean } {
  try {
    mkdirSync(dir, { mode: 0o700 });
    return { created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw new SnapshotError(`cannot create the snapshot directory '${dir}': ${(error as Error).message}`, { cause: error });
  }
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (error) {
    throw new SnapshotError(`'${dir}' exists and is not a directory vmm can read: ${(error as Error).message}`, { cause: error });
  }
  if (entries.length > 0) throw new SnapshotError(`'${dir}' is not empty: a snapshot goes into a new or empty directory (nothing is overwritten)`);
  return { created: false };
}

/** Writes the manifest (through a temporary name, so a reader never sees half of it). */
export function writeManifest(dir: string, manifest: SnapshotManifest): void {
  const partial = path.join(dir, `${MANIFEST_FILE}.partial`);
  const fd = openSync(partial, "wx", 0o600);
  try {
    writeSync(fd, JSON.stringify(manifest, null, 1) + "\n");
  } finally {
    closeSync(fd);
  }
  renameSync(partial, path.join(dir, MANIFEST_FILE));
}

/** Removes what a failed snapshot wrote into `dir`: the files it creates, and `dir` itself when it created it. */
export function removePartialSnapshot(dir: string, created: boolean): void {
  for (const f of [MEMORY_FILE, `${MANIFEST_FILE}.partial`, MANIFEST_FILE]) rmSync(path.join(dir, f), { force: true });
  try {
    if (created && readdirSync(dir).length === 0) rmdirSync(dir);
  } catch {
    // Gone already, or not ours to judge.
  }
}

/** Reads and checks a snapshot directory's manifest; every problem is a SnapshotError naming the file. */
export function readManifest(dir: string): SnapshotManifest {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new SnapshotError(code === "ENOENT" ? `'${dir}' is not a snapshot (no ${MANIFEST_FILE})` : `cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }
  let m: Partial<SnapshotManifest>;
  try {
    m = JSON.parse(text) as Partial<SnapshotManifest>;
  } catch (error) {
    throw new SnapshotError(`${file} is not JSON: ${(error as Error).message}`, { cause: error });
  }
  const bad = (what: string) => new SnapshotError(`${file}: ${what}`);
  if (!m || typeof m !== "object" || m.format !== SNAPSHOT_FORMAT) throw bad(`not a vmm snapshot manifest (format is not "${SNAPSHOT_FORMAT}")`);
  if (m.formatVersion !== SNAPSHOT_FORMAT_VERSION) throw bad(`snapshot format version ${String(m.formatVersion)}; this vmm reads version ${SNAPSHOT_FORMAT_VERSION}`);
  const machine = m.machine;
  if (!machine || machine.arch !== "x86_64" || !Number.isSafeInteger(machine.memory) || !Number.isInteger(machine.cpus) || machine.cpus < 1 || typeof machine.name !== "string") {
    throw bad("the machine description is missing or malformed");
  }
  const memory = m.memory;
  if (!memory || memory.file !== MEMORY_FILE || !Array.isArray(memory.regions) || !memory.regions.every(isRegion)) throw bad("the memory description is missing or malformed");
  if (!Array.isArray(m.vcpus) || m.vcpus.length !== machine.cpus) throw bad(`${machine.cpus} vCPUs described, but ${Array.isArray(m.vcpus) ? m.vcpus.length : "no"} vCPU states saved`);
  if (!m.kvm || typeof m.kvm !== "object" || !m.platform || typeof m.platform !== "object" || m.pci === undefined) throw bad("the machine state is incomplete");
  return m as SnapshotManifest;
}

function isRegion(r: unknown): r is MemoryImageRegion {
  const x = r as MemoryImageRegion;
  return !!x && [x.gpa, x.size, x.offset].every((n) => Number.isSafeInteger(n) && n >= 0);
}
