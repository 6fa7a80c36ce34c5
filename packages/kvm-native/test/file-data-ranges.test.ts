// Which parts of a file hold data (lseek SEEK_DATA/SEEK_HOLE): a sparse file, and guest RAM's memfd, whose
// untouched pages a snapshot must not read (reading them through the mapping would allocate them).
import { closeSync, mkdtempSync, openSync, writeSync, ftruncateSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Kvm, fileDataRanges } from "../src/index.js";
import { tryLoadNative } from "../src/native.js";
import { kvmOk } from "./support/kvm.js";

const MiB = 1 << 20;
const addon = tryLoadNative();
const built = !(addon instanceof Error);
if (!built) console.warn(`SKIP fileDataRanges on a sparse file: the addon cannot be loaded (${addon.message})`);

describe.skipIf(!built)("fileDataRanges", () => {
  it("finds the written runs of a sparse file, relative to the range asked about, and nothing past it", () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), "vmm-extents-")), "sparse");
    const fd = openSync(file, "w+");
    try {
      ftruncateSync(fd, 8 * MiB);
      writeSync(fd, new Uint8Array(4096).fill(1), 0, 4096, 2 * MiB);
      writeSync(fd, new Uint8Array(4096).fill(2), 0, 4096, 6 * MiB);
      const all = fileDataRanges(fd, 0, 8 * MiB);
      // File systems allocate in their own blocks: each run covers the page written, and no run reaches another.
      expect(all.length).toBe(2);
      expect(all[0]!.offset).toBeLessThanOrEqual(2 * MiB);
      expect(all[0]!.offset + all[0]!.length).toBeGreaterThanOrEqual(2 * MiB + 4096);
      expect(all[0]!.offset + all[0]!.length).toBeLessThan(6 * MiB);
      const tail = fileDataRanges(fd, 4 * MiB, 4 * MiB);
      expect(tail.length).toBe(1);
      expect(tail[0]!.offset).toBeLessThanOrEqual(2 * MiB);
      expect(fileDataRanges(fd, 3 * MiB, MiB)).toEqual([]);
    } finally {
      closeSync(fd);
    }
  });
});

describe.skipIf(!kvmOk)("fileDataRanges over guest RAM (real /dev/kvm)", () => {
  let kvm: Kvm | undefined;
  afterEach(() => kvm?.close());

  it("reports exactly the pages of a memfd that were written, each page on its own", () => {
    kvm = Kvm.open();
    const vm = kvm.createVm();
    const ram = vm.allocateRam(16 * MiB);
    ram.chunks[0]![5 * 4096] = 1;
    ram.chunks[0]![9 * MiB + 1] = 1;
    expect(fileDataRanges(ram.fd, 0, ram.size)).toEqual([
      { offset: 5 * 4096, length: 4096 },
      { offset: 9 * MiB, length: 4096 },
    ]);
    vm.close();
  });
});
