// Taking and restoring an x86_64 machine's snapshot: the order of the steps, over the parts a Machine hands in.
import { closeSync, openSync } from "node:fs";
import path from "node:path";
import { SnapshotError, type DeviceState, type GuestMemory, type Snapshottable, type StateValue } from "@vmm/core";
import { checkMemoryImage, readMemoryImage, writeMemoryImage, type DataRanges } from "./memory-image.js";
import { MEMORY_FILE, SNAPSHOT_FORMAT, SNAPSHOT_FORMAT_VERSION, prepareSnapshotDir, readManifest, removePartialSnapshot, writeManifest, type SnapshotManifest } from "./manifest.js";
import { restoreX86Kvm, restoreX86Clock, saveX86Kvm, type X86VmStateAccess } from "./x86-kvm.js";
import { restoreX86Vcpu, saveX86Vcpu, type X86VcpuStateAccess } from "./x86-vcpu.js";

/** What a snapshot reads from and restores into. */
export interface X86SnapshotParts {
  readonly name: string;
  readonly vm: X86VmStateAccess;
  readonly vcpus: readonly X86VcpuStateAccess[];
  /** KVM's list of MSRs to save. */
  readonly msrIndices: () => readonly number[];
  readonly memory: GuestMemory;
  /** Which parts of a RAM region were ever written (the rest is zero and is not read). */
  readonly dataRanges?: DataRanges;
  /** Which parts of a file hold data (a sparse memory file's holes are not read). */
  readonly fileDataRanges?: (fd: number, offset: number, length: number) => ReadonlyArray<{ offset: number; length: number }>;
  /** The platform devices by name, restored in this order. */
  readonly platform: ReadonlyArray<readonly [string, Snapshottable]>;
  /** The PCI bus: `quiesce` holds the devices' new work until `resume`. */
  readonly pci: { quiesce(): Promise<void>; resume(): void; saveState(): DeviceState; restoreState(state: DeviceState): void };
}

/** What a snapshot wrote. */
export interface SnapshotSummary {
  readonly dir: string;
  /** Guest RAM, and the bytes of it that were not zero (what the memory file holds on disk). */
  readonly memoryBytes: number;
  readonly dataBytes: number;
  readonly milliseconds: number;
}

/** How guest memory comes back: read whole before the vCPUs run, or served page by page as they touch it. */
export type RestoreMemory = "eager" | "lazy";

/** Serves a memory file's pages on demand into guest RAM (kvm-native's userfaultfd pager). */
export interface LazyMemory {
  /** Pages it could not serve from the file (read errors, refused copies): anything but 0 means wrong memory. */
  errors(): number;
  close(): void;
}
export type LazyMemoryFactory = (regions: Array<{ memory: Uint8Array; fd: number; offset: number }>) => LazyMemory;

/** A snapshot read from disk, checked, ready to restore. */
export interface LoadedSnapshot {
  readonly dir: string;
  readonly manifest: SnapshotManifest;
}

export function loadSnapshot(dir: string): LoadedSnapshot {
  return { dir, manifest: readManifest(dir) };
}

/**
 * Writes a paused machine's snapshot into `dir` (new or empty): devices finish their I/O in flight, then every
 * state is saved, guest RAM last; the manifest goes in after everything else. A failure removes what it wrote.
 */
export async function saveX86Snapshot(parts: X86SnapshotParts, dir: string, extra: StateValue): Promise<SnapshotSummary> {
  const started = performance.now();
  await parts.pci.quiesce();
  try {
    return writeX86Snapshot(parts, dir, extra, started);
  } finally {
    // The devices take work again (doorbells rung meanwhile are served) whether the VM runs on or stops.
    parts.pci.resume();
  }
}

function writeX86Snapshot(parts: X86SnapshotParts, dir: string, extra: StateValue, started: number): SnapshotSummary {
  // Every state before any file: a device that cannot be snapshotted stops it with nothing written.
  const pci = parts.pci.saveState();
  const platform = Object.fromEntries(parts.platform.map(([name, device]) => [name, device.saveState()]));
  const msrIndices = parts.msrIndices();
  const vcpus = parts.vcpus.map((vcpu, i) => saveX86Vcpu(vcpu, msrIndices, `vcpu${i}`));
  const kvm = saveX86Kvm(parts.vm);
  const { created } = prepareSnapshotDir(dir);
  try {
    const { layout, dataBytes } = writeMemoryImage(path.join(dir, MEMORY_FILE), parts.memory.list(), parts.dataRanges);
    writeManifest(dir, {
      format: SNAPSHOT_FORMAT,
      formatVersion: SNAPSHOT_FORMAT_VERSION,
      createdAt: new Date().toISOString(),
      machine: { name: parts.name, arch: "x86_64", memory: parts.memory.size, cpus: parts.vcpus.length },
      memory: { file: MEMORY_FILE, regions: layout, dataBytes },
      vcpus,
      kvm,
      platform,
      pci: pci as unknown as StateValue,
      extra,
    });
    return { dir, memoryBytes: parts.memory.size, dataBytes, milliseconds: performance.now() - started };
  } catch (error) {
    removePartialSnapshot(dir, created);
    throw error instanceof SnapshotError ? error : new SnapshotError(`${parts.name}: writing the snapshot into '${dir}' failed: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Puts a snapshot into a machine assembled from the same configuration, before it runs: guest memory (eagerly,
 * or lazily through `lazy`), KVM's interrupt controllers and PIT, every vCPU, the platform devices, the PCI bus,
 * and last the clock. Returns the lazy pager to keep until the machine closes.
 */
export function restoreX86Snapshot(parts: X86SnapshotParts, snapshot: LoadedSnapshot, mode: RestoreMemory, lazy?: LazyMemoryFactory): LazyMemory | undefined {
  const { manifest: m, dir } = snapshot;
  if (m.machine.memory !== parts.memory.size || m.machine.cpus !== parts.vcpus.length) {
    throw new SnapshotError(
      `${dir}: the snapshot's machine has ${m.machine.memory / 2 ** 20} MiB and ${m.machine.cpus} vCPUs; this one has ${parts.memory.size / 2 ** 20} MiB and ${parts.vcpus.length}`,
    );
  }
  const file = path.join(dir, m.memory.file);
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (error) {
    throw new SnapshotError(`cannot open the snapshot's memory file ${file}: ${(error as Error).message}`, { cause: error });
  }
  let pager: LazyMemory | undefined;
  try {
    const regions = parts.memory.list();
    checkMemoryImage(file, fd, m.memory.regions, regions);
    if (mode === "lazy") {
      if (!lazy) throw new SnapshotError(`${parts.name}: this machine cannot restore memory lazily`);
      // The pager opens the file for itself; this descriptor is closed below either way.
      pager = lazy(regions.map((r, i) => ({ memory: r.bytes, fd, offset: m.memory.regions[i]!.offset })));
    } else readMemoryImage(fd, m.memory.regions, regions, parts.fileDataRanges && ((offset, length) => parts.fileDataRanges!(fd, offset, length)));
    restoreX86Kvm(parts.vm, m.kvm);
    parts.vcpus.forEach((vcpu, i) => restoreX86Vcpu(vcpu, m.vcpus[i]!, `vcpu${i}`));
    for (const [name, device] of parts.platform) {
      const state = m.platform[name];
      if (!state) throw new SnapshotError(`${dir}: the snapshot has no state for ${name}`);
      device.restoreState(state);
    }
    parts.pci.restoreState(m.pci as unknown as DeviceState);
    restoreX86Clock(parts.vm, m.kvm);
  } catch (error) {
    pager?.close();
    throw error;
  } finally {
    closeSync(fd);
  }
  return pager;
}
