// The snapshot directory's files without KVM: the sparse memory image, the manifest's checks, the directory rules.
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, statSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { SnapshotError, type RamRegion } from "@vmm/core";
import { describe, expect, it } from "vitest";
import { checkMemoryImage, memoryImageLayout, readMemoryImage, writeMemoryImage } from "../src/snapshot/memory-image.js";
import { MANIFEST_FILE, prepareSnapshotDir, readManifest, removePartialSnapshot, writeManifest, type SnapshotManifest } from "../src/snapshot/manifest.js";
import { fromStateValue, toStateValue } from "../src/snapshot/bigint-json.js";

const tmp = () => mkdtempSync(path.join(tmpdir(), "vmm-snapfiles-"));

function regions(): RamRegion[] {
  const low = new Uint8Array(64 * 4096);
  const high = new Uint8Array(32 * 4096 + 100); // not a whole number of pages
  low.fill(0xaa, 4096 * 3, 4096 * 3 + 10);
  low[4096 * 40] = 1;
  high[high.length - 1] = 7;
  return [
    { gpa: 0, bytes: low },
    { gpa: 0x1_0000_0000, bytes: high },
  ];
}

describe("the memory image", () => {
  it("is written sparse (zero pages are holes), page-aligned per region, and reads back byte for byte", () => {
    const dir = tmp();
    const file = path.join(dir, "memory.bin");
    const ram = regions();
    const { layout, dataBytes } = writeMemoryImage(file, ram);
    expect(layout).toEqual([
      { gpa: 0, size: 64 * 4096, offset: 0 },
      { gpa: 0x1_0000_0000, size: 32 * 4096 + 100, offset: 64 * 4096 },
    ]);
    expect(dataBytes).toBe(2 * 4096 + 100); // two data pages of the low region, the high region's short last page
    expect(statSync(file).size).toBe(64 * 4096 + 33 * 4096);
    const copy = ram.map((r) => ({ gpa: r.gpa, bytes: new Uint8Array(r.bytes.length) }));
    const fd = openSync(file, "r");
    try {
      checkMemoryImage(file, fd, layout, copy);
      readMemoryImage(fd, layout, copy);
    } finally {
      closeSync(fd);
    }
    copy.forEach((r, i) => expect(Buffer.compare(r.bytes, ram[i]!.bytes)).toBe(0));
  });

  it("looks only where dataRanges says a region may hold data (RAM's memfd: the pages ever written)", () => {
    const file = path.join(tmp(), "memory.bin");
    const ram = regions();
    // The low region's page 40 is outside the runs given, so it is not read (a memfd hole reads as zero anyway).
    const { dataBytes } = writeMemoryImage(file, ram, (r) => (r.gpa === 0 ? [{ offset: 4096 * 3, length: 100 }] : undefined));
    expect(dataBytes).toBe(4096 + 100); // page 3 of the low region, the short last page of the high one
    const copy = ram.map((r) => ({ gpa: r.gpa, bytes: new Uint8Array(r.bytes.length) }));
    const fd = openSync(file, "r");
    try {
      readMemoryImage(fd, memoryImageLayout(ram), copy);
    } finally {
      closeSync(fd);
    }
    expect(copy[0]!.bytes[4096 * 3]).toBe(0xaa);
    expect(copy[0]!.bytes[4096 * 40]).toBe(0);
    expect(Buffer.compare(copy[1]!.bytes, ram[1]!.bytes)).toBe(0);
  });

  it("reads only where the file holds data when told (a sparse file's holes are not read)", () => {
    const file = path.join(tmp(), "memory.bin");
    const ram = regions();
    const { layout } = writeMemoryImage(file, ram);
    const copy = ram.map((r) => ({ gpa: r.gpa, bytes: new Uint8Array(r.bytes.length) }));
    const asked: Array<[number, number]> = [];
    const fd = openSync(file, "r");
    try {
      // The file says: data only at page 40 of the low region, anywhere in the high one.
      readMemoryImage(fd, layout, copy, (offset, length) => (asked.push([offset, length]), offset === 0 ? [{ offset: 4096 * 40, length: 4096 }] : undefined));
    } finally {
      closeSync(fd);
    }
    expect(asked).toEqual([[0, 64 * 4096], [64 * 4096, 32 * 4096 + 100]]);
    expect(copy[0]!.bytes[4096 * 3]).toBe(0); // in a "hole": not read
    expect(copy[0]!.bytes[4096 * 40]).toBe(1);
    expect(Buffer.compare(copy[1]!.bytes, ram[1]!.bytes)).toBe(0);
  });

  it("never overwrites a file, and refuses a layout or size that is not this machine's", () => {
    const dir = tmp();
    const file = path.join(dir, "memory.bin");
    writeFileSync(file, "mine");
    expect(() => writeMemoryImage(file, regions())).toThrow(/EEXIST/);
    expect(readFileSync(file, "utf8")).toBe("mine");
    const fd = openSync(file, "r");
    try {
      const ram = regions();
      expect(() => checkMemoryImage(file, fd, memoryImageLayout(ram), ram)).toThrow(`${file}: 4 bytes, expected ${97 * 4096} for this machine's RAM`);
      expect(() => checkMemoryImage(file, fd, memoryImageLayout(ram.slice(0, 1)), ram)).toThrow(SnapshotError);
    } finally {
      closeSync(fd);
    }
  });
});

const manifest = (): SnapshotManifest => ({
  format: "vmm-snapshot",
  formatVersion: 1,
  createdAt: "2026-12-04T00:00:00.000Z",
  machine: { name: "m", arch: "x86_64", memory: 4096, cpus: 1 },
  memory: { file: "memory.bin", regions: [{ gpa: 0, size: 4096, offset: 0 }], dataBytes: 0 },
  vcpus: [{ version: 1, data: {} }],
  kvm: { version: 1, data: {} },
  platform: {},
  pci: { version: 1, data: { functions: [] } },
  extra: null,
});

describe("the snapshot directory", () => {
  it("is created, or taken when empty; a directory with anything in it or a file is refused and left as it was", () => {
    const base = tmp();
    prepareSnapshotDir(path.join(base, "new"));
    expect(statSync(path.join(base, "new")).mode & 0o777).toBe(0o700);
    mkdirSync(path.join(base, "empty"));
    prepareSnapshotDir(path.join(base, "empty"));
    writeFileSync(path.join(base, "empty", "x"), "keep");
    expect(() => prepareSnapshotDir(path.join(base, "empty"))).toThrow(`'${path.join(base, "empty")}' is not empty: a snapshot goes into a new or empty directory (nothing is overwritten)`);
    expect(readFileSync(path.join(base, "empty", "x"), "utf8")).toBe("keep");
    expect(() => prepareSnapshotDir(path.join(base, "empty", "x"))).toThrow(SnapshotError);
    expect(() => prepareSnapshotDir(path.join(base, "no", "such"))).toThrow(/cannot create the snapshot directory/);
  });

  it("removePartialSnapshot removes only the files a snapshot writes", () => {
    const dir = tmp();
    writeFileSync(path.join(dir, "memory.bin"), "");
    writeFileSync(path.join(dir, "notes.txt"), "keep");
    removePartialSnapshot(dir, true);
    expect(readdirSync(dir)).toEqual(["notes.txt"]);
    const given = path.join(tmp(), "s");
    mkdirSync(given);
    writeFileSync(path.join(given, "memory.bin"), "");
    removePartialSnapshot(given, false);
    expect(readdirSync(given)).toEqual([]);
    writeFileSync(path.join(given, "memory.bin"), "");
    removePartialSnapshot(given, true);
    expect(existsSync(given)).toBe(false);
  });

  it("reads back the manifest it wrote, and refuses damaged or foreign ones with the reason", () => {
    const dir = tmp();
    writeManifest(dir, manifest());
    expect(readManifest(dir)).toEqual(manifest());
    const file = path.join(dir, MANIFEST_FILE);
    const broken = (m: object) => {
      writeFileSync(file, JSON.stringify(m));
      return () => readManifest(dir);
    };
    expect(broken({ ...manifest(), formatVersion: 9 })).toThrow(`${file}: snapshot format version 9; this vmm reads version 1`);
    expect(broken({ ...manifest(), format: "other" })).toThrow(`${file}: not a vmm snapshot manifest (format is not "vmm-snapshot")`);
    expect(broken({ ...manifest(), vcpus: [] })).toThrow(`${file}: 1 vCPUs described, but 0 vCPU states saved`);
    expect(broken({ ...manifest(), memory: { file: "../../etc/passwd", regions: [] } })).toThrow(`${file}: the memory description is missing or malformed`);
    writeFileSync(file, "{");
    expect(() => readManifest(dir)).toThrow(/is not JSON/);
    expect(() => readManifest(tmp())).toThrow(/is not a snapshot \(no snapshot.json\)/);
  });
});

describe("bigints in state", () => {
  it("are saved as decimal strings with an n and come back exact; other strings stay strings", () => {
    const regs = { rip: 0xffffffff8305e26cn, rflags: 0x202, name: "12n3", list: [1n, 2] };
    const saved = toStateValue(regs, "regs");
    expect(saved).toEqual({ rip: `${0xffffffff8305e26cn}n`, rflags: 0x202, name: "12n3", list: ["1n", 2] });
    expect(fromStateValue(JSON.parse(JSON.stringify(saved)), "regs")).toEqual(regs);
    expect(() => toStateValue({ f: () => 0 }, "x")).toThrow("x.f: function cannot be saved");
  });
});
