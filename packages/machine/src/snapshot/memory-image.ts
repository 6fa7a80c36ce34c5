// Guest RAM in a snapshot: one file, the RAM regions one after another, written sparse (pages of zeros are left
// as holes, so a mostly idle guest's snapshot takes little disk) and read back eagerly or served on demand.
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import { SnapshotError, type RamRegion } from "@vmm/core";

/** Where one RAM region's bytes are in the memory file. */
export interface MemoryImageRegion {
  readonly gpa: number;
  readonly size: number;
  readonly offset: number;
}

const PAGE = 4096;
/** Pages compared and written in one go: big enough that a run of data is one write. */
const RUN_PAGES = 256;
const ZERO_PAGE = new Uint8Array(PAGE);
/** Bytes an eager restore reads at a time. */
const READ_CHUNK = 1 << 20;

/** The file layout of these regions: each starts on a page boundary after the one before. */
export function memoryImageLayout(regions: readonly RamRegion[]): MemoryImageRegion[] {
  let offset = 0;
  return regions.map((r) => {
    const region = { gpa: r.gpa, size: r.bytes.length, offset };
    offset += Math.ceil(r.bytes.length / PAGE) * PAGE;
    return region;
  });
}

/** Where a region may hold data (offsets in it); undefined: anywhere. Outside these runs its pages are zero. */
export type DataRanges = (region: RamRegion) => ReadonlyArray<{ offset: number; length: number }> | undefined;

/**
 * Writes the regions to a new file at `path` (never an existing one), skipping pages of zeros; `dataRanges` says
 * which parts of a region are worth looking at (RAM's memfd knows which pages were ever written: reading the others
 * through the mapping would allocate them). Returns the layout and how many bytes of data were written.
 */
export function writeMemoryImage(path: string, regions: readonly RamRegion[], dataRanges: DataRanges = () => undefined): { layout: MemoryImageRegion[]; dataBytes: number } {
  const layout = memoryImageLayout(regions);
  const fd = openSync(path, "wx", 0o600);
  let dataBytes = 0;
  try {
    regions.forEach((r, i) => {
      const base = layout[i]!.offset;
      const bytes = r.bytes;
      for (const run of dataRanges(r) ?? [{ offset: 0, length: bytes.length }]) {
        let page = Math.floor(run.offset / PAGE);
        const pages = Math.min(Math.ceil((run.offset + run.length) / PAGE), Math.ceil(bytes.length / PAGE));
        while (page < pages) {
          // Skip zero pages, then write the run of non-zero pages that follows (at most RUN_PAGES).
          while (page < pages && isZeroPage(bytes, page)) page++;
          const first = page;
          while (page < pages && page - first < RUN_PAGES && !isZeroPage(bytes, page)) page++;
          if (page === first) continue;
          const start = first * PAGE;
          const end = Math.min(page * PAGE, bytes.length);
          dataBytes += writeAll(fd, bytes.subarray(start, end), base + start);
        }
      }
    });
    const last = layout[layout.length - 1];
    ftruncateSync(fd, last ? last.offset + Math.ceil(last.size / PAGE) * PAGE : 0);
  } finally {
    closeSync(fd);
  }
  return { layout, dataBytes };
}

/** Checks that a memory file's layout fits these regions exactly (same addresses and sizes) and the file's size. */
export function checkMemoryImage(path: string, fd: number, layout: readonly MemoryImageRegion[], regions: readonly RamRegion[]): void {
  const expected = memoryImageLayout(regions);
  const same = expected.length === layout.length && expected.every((e, i) => e.gpa === layout[i]!.gpa && e.size === layout[i]!.size && e.offset === layout[i]!.offset);
  if (!same) throw new SnapshotError(`${path}: its RAM layout (${describe(layout)}) differs from this machine's (${describe(expected)})`);
  const last = expected[expected.length - 1];
  const size = last ? last.offset + Math.ceil(last.size / PAGE) * PAGE : 0;
  const actual = fstatSync(fd).size;
  if (actual !== size) throw new SnapshotError(`${path}: ${actual} bytes, expected ${size} for this machine's RAM`);
}

/** Where a file holds data in [offset, offset + length), relative to offset; undefined: anywhere. */
export type FileDataRanges = (offset: number, length: number) => ReadonlyArray<{ offset: number; length: number }> | undefined;

/**
 * Reads the file into the regions (an eager restore), which must be fresh (all zero): only where `fileData` says
 * the file holds data (a sparse file's holes are skipped), through a buffer, and only pages that are not zero are
 * copied, so zeros leave guest RAM untouched (not resident).
 */
export function readMemoryImage(fd: number, layout: readonly MemoryImageRegion[], regions: readonly RamRegion[], fileData: FileDataRanges = () => undefined): void {
  const buffer = new Uint8Array(READ_CHUNK);
  regions.forEach((r, i) => {
    const base = layout[i]!.offset;
    for (const run of fileData(base, r.bytes.length) ?? [{ offset: 0, length: r.bytes.length }]) readRun(fd, base, r.bytes, run.offset, Math.min(run.offset + run.length, r.bytes.length), buffer);
  });
}

/** Copies the non-zero pages of file bytes [base + from, base + to) into `bytes` at [from, to), page-aligned. */
function readRun(fd: number, base: number, bytes: Uint8Array, from: number, to: number, buffer: Uint8Array): void {
  for (let at = Math.floor(from / PAGE) * PAGE; at < to; ) {
    const want = Math.min(to - at, READ_CHUNK);
    for (let got = 0; got < want; ) {
      const n = readSync(fd, buffer, got, want - got, base + at + got);
      if (n === 0) throw new SnapshotError(`the memory file ends early, at byte ${base + at + got}`);
      got += n;
    }
    const read = buffer.subarray(0, want);
    for (let page = 0; page * PAGE < want; page++) {
      if (!isZeroPage(read, page)) bytes.set(read.subarray(page * PAGE, Math.min((page + 1) * PAGE, want)), at + page * PAGE);
    }
    at += want;
  }
}

function isZeroPage(bytes: Uint8Array, page: number): boolean {
  const start = page * PAGE;
  const end = Math.min(start + PAGE, bytes.length);
  return Buffer.compare(Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start), ZERO_PAGE.subarray(0, end - start)) === 0;
}

function writeAll(fd: number, bytes: Uint8Array, position: number): number {
  for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at, position + at);
  return bytes.length;
}

function describe(layout: readonly MemoryImageRegion[]): string {
  return layout.map((r) => `0x${r.gpa.toString(16)}+0x${r.size.toString(16)}`).join(", ") || "none";
}
