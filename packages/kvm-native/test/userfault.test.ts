// Demand paging through userfaultfd: pages of registered guest RAM are served from a snapshot-like file (a known
// pattern with holes) on first access, from JS, from libuv's threadpool (a system call reading the memory) and
// from a guest through KVM; populate() and close().
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { kvmTestGate } from "@vmm/test-support";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createUserfaultPager, Kvm, userfaultAvailability, type UserfaultPager, type Vm } from "../src/index.js";
import { assemble } from "./support/assemble.js";
import { kvmOk } from "./support/kvm.js";
import { enterLongMode, writePaging } from "./support/paging.js";

const PAGE = 4096;
const uffdOk = kvmOk && kvmTestGate("@vmm/kvm-native", { what: "userfaultfd tests", check: () => userfaultAvailability() }).ok;

/** Byte j of data page i: never a whole zero page. */
const patternByte = (i: number, j: number) => ((i * 131 + j * 7 + 1) % 251) + 1;

/**
 * A snapshot-like file of `pages` pages: data pages where `isData(i)`, holes elsewhere, page `zeroPage` written
 * with zeros (data on disk, zero content), and the file cut `shortBy` pages before the end (read as zero).
 */
function snapshotFile(dir: string, name: string, pages: number, isData: (i: number) => boolean, zeroPage: number, shortBy = 0) {
  const path = join(dir, name);
  const fd = openSync(path, "w+");
  ftruncateSync(fd, (pages - shortBy) * PAGE);
  const expected = new Uint8Array(pages * PAGE);
  for (let i = 0; i < pages - shortBy; i++) {
    if (i === zeroPage) {
      writeSync(fd, new Uint8Array(PAGE), 0, PAGE, i * PAGE);
    } else if (isData(i)) {
      const page = Uint8Array.from({ length: PAGE }, (_, j) => patternByte(i, j));
      writeSync(fd, page, 0, PAGE, i * PAGE);
      expected.set(page, i * PAGE);
    }
  }
  const dataPages = Array.from({ length: pages - shortBy }, (_, i) => i).filter((i) => i !== zeroPage && isData(i)).length;
  return { path, fd, expected, dataPages, zeroPages: pages - dataPages };
}

/** Reads every page from JS and returns a copy. */
function readAll(memory: Uint8Array): Uint8Array {
  const out = new Uint8Array(memory.byteLength);
  for (let at = 0; at < memory.byteLength; at += PAGE) out.set(memory.subarray(at, at + PAGE), at);
  return out;
}

describe.skipIf(!uffdOk)("userfaultfd demand paging (real userfaultfd)", () => {
  let dir: string;
  let kvm: Kvm;
  let vm: Vm;
  let pager: UserfaultPager | undefined;
  const fds: number[] = [];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "kvm-uffd-"));
    kvm = Kvm.open();
  });
  afterAll(() => {
    kvm.close();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    pager?.close();
    pager = undefined;
    vm?.close();
    for (const fd of fds.splice(0)) closeSync(fd);
  });
  const file = (...args: Parameters<typeof snapshotFile>) => {
    const f = snapshotFile(...args);
    fds.push(f.fd);
    return f;
  };

  it("serves anonymous memory read from JS with the file's bytes (holes, a zero page and past-EOF as zeros)", () => {
    vm = kvm.createVm();
    const f = file(dir, "anon.snap", 72, (i) => i % 3 !== 1, 6, 8);
    const memory = vm.allocateMemory(72 * PAGE);
    pager = createUserfaultPager({ regions: [{ memory, fd: f.fd, offset: 0 }], threads: 1 });
    expect(Buffer.from(readAll(memory)).equals(Buffer.from(f.expected))).toBe(true);
    const s = pager.stats();
    expect(s.pagesCopied).toBe(f.dataPages);
    expect(s.zeroPages).toBe(f.zeroPages);
    expect(s.faults).toBeGreaterThanOrEqual(72);
    expect(s.errors).toBe(0);
    // Present now: reading again faults no more.
    readAll(memory);
    expect(pager.stats().faults).toBe(s.faults);
  });

  it("serves memfd-backed GuestRam chunks from their own file offsets, with two handler threads", () => {
    vm = kvm.createVm();
    const f = file(dir, "shared.snap", 96, (i) => i % 4 !== 0, 13);
    const ram = vm.allocateRam(64 * PAGE, { chunkSize: 32 * PAGE });
    // The chunks take file pages 32-63 and 64-95: offsets that are not the chunks' own.
    const regions = ram.chunks.map((memory, i) => ({ memory, fd: f.fd, offset: (32 + i * 32) * PAGE }));
    pager = createUserfaultPager({ regions, threads: 2 });
    expect(pager.threads).toBe(2);
    const got = Buffer.concat(ram.chunks.map((c) => readAll(c)));
    expect(got.equals(Buffer.from(f.expected.subarray(32 * PAGE)))).toBe(true);
    const s = pager.stats();
    const dataPages = Array.from({ length: 64 }, (_, i) => i + 32).filter((i) => i % 4 !== 0).length;
    expect([s.pagesCopied, s.zeroPages, s.errors]).toEqual([dataPages, 64 - dataPages, 0]);
  });

  it("serves faults of another thread inside a system call (a threadpool write() from the memory)", async () => {
    vm = kvm.createVm();
    const f = file(dir, "pool.snap", 128, (i) => i % 5 !== 2, 40);
    const memory = vm.allocateMemory(128 * PAGE);
    pager = createUserfaultPager({ regions: [{ memory, fd: f.fd, offset: 0 }], threads: 2 });
    const outPath = join(dir, "pool.out");
    const out = await open(outPath, "w");
    try {
      // libuv's threadpool runs the write; the kernel's copy from the memory takes the faults.
      const { bytesWritten } = await out.write(memory, 0, memory.byteLength, 0);
      expect(bytesWritten).toBe(memory.byteLength);
    } finally {
      await out.close();
    }
    expect(readFileSync(outPath).equals(Buffer.from(f.expected))).toBe(true);
    expect(pager.stats().pagesCopied).toBe(f.dataPages);
  });

  it("populate() copies every data page without faults; after close() the memory still holds the file", async () => {
    vm = kvm.createVm();
    const f = file(dir, "populate.snap", 256, (i) => i % 7 < 4, 3, 16);
    const memory = vm.allocateMemory(256 * PAGE);
    pager = createUserfaultPager({ regions: [{ memory, fd: f.fd, offset: 0 }], threads: 1 });
    const done = pager.populate();
    expect(pager.populate()).toBe(done);
    expect(await done).toBe(true);
    const s = pager.stats();
    expect([s.faults, s.pagesCopied, s.zeroPages, s.errors]).toEqual([0, f.dataPages, 0, 0]);
    pager.close();
    // The zero pages were left missing: without the uffd they fill with zeros, which is what the file says.
    expect(Buffer.from(readAll(memory)).equals(Buffer.from(f.expected))).toBe(true);
  });

  it("close() joins the threads, is idempotent and keeps the final stats; pages never served then read as zero", () => {
    vm = kvm.createVm();
    const f = file(dir, "close.snap", 8, () => true, -1);
    const memory = vm.allocateMemory(8 * PAGE);
    const p = createUserfaultPager({ regions: [{ memory, fd: f.fd, offset: 0 }], threads: 4 });
    expect(memory[0]).toBe(patternByte(0, 0));
    p.close();
    p.close();
    expect(p.closed).toBe(true);
    expect(p.stats()).toEqual({ faults: 1, pagesCopied: 1, zeroPages: 0, errors: 0 });
    expect(memory[PAGE]).toBe(0); // page 1 was never served
    expect(memory[1]).toBe(patternByte(0, 1));
  });

  it("refuses regions that are not page-granular or overlap, and leaves no registration behind", () => {
    vm = kvm.createVm();
    const f = file(dir, "bad.snap", 4, () => true, -1);
    const memory = vm.allocateMemory(4 * PAGE);
    expect(() => createUserfaultPager({ regions: [{ memory, fd: f.fd, offset: 100 }], threads: 1 })).toThrow(/offset must be a non-negative multiple of 4096/);
    expect(() => createUserfaultPager({ regions: [{ memory: memory.subarray(0, 100), fd: f.fd, offset: 0 }], threads: 1 })).toThrow(RangeError);
    expect(() => createUserfaultPager({ regions: [{ memory: memory.subarray(1), fd: f.fd, offset: 0 }], threads: 1 })).toThrow(RangeError);
    expect(() => createUserfaultPager({ regions: [{ memory, fd: f.fd, offset: 0 }], threads: 0 })).toThrow(/threads must be 1 to 64/);
    const halves = [memory.subarray(0, 2 * PAGE), memory.subarray(PAGE, 3 * PAGE)];
    expect(() => createUserfaultPager({ regions: halves.map((m) => ({ memory: m, fd: f.fd, offset: 0 })), threads: 1 })).toThrow(/overlap|UFFDIO_REGISTER/);
    // Nothing stayed registered: the memory fills as plain anonymous memory (zeros, not the file).
    expect(memory[0]).toBe(0);
    expect(memory[3 * PAGE]).toBe(0);
  });
});

describe.skipIf(!uffdOk)("a guest reading userfaultfd-registered RAM (real /dev/kvm and userfaultfd)", () => {
  const RAM_GPA = 0x40000000;
  const PAGES = 512; // 2 MiB
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), "kvm-uffd-guest-"))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The 64-bit sum of the little-endian qwords of `bytes`. */
  const qwordSum = (bytes: Uint8Array) => {
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let sum = 0n;
    for (let at = 0; at < bytes.byteLength; at += 8) sum += v.getBigUint64(at, true);
    return sum & 0xffff_ffff_ffff_ffffn;
  };

  for (const backing of ["anonymous memory", "memfd GuestRam"] as const) {
    it(`sums every qword of ${PAGES} pages served on the vCPU's faults (${backing}, 2 threads)`, () => {
      const f = snapshotFile(dir, `${backing.split(" ")[0]}.snap`, PAGES, (i) => i % 3 !== 0, 10);
      const kvm = Kvm.open();
      const vm = kvm.createVm();
      let pager: UserfaultPager | undefined;
      try {
        const low = vm.allocateMemory(0x200000);
        vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: low });
        writePaging(low);
        low.set(
          assemble(`.code64
            mov $${RAM_GPA}, %rsi
            mov $${(PAGES * PAGE) / 8}, %rcx
            xor %rax, %rax
          1: add (%rsi), %rax
            add $8, %rsi
            dec %rcx
            jnz 1b
            out %eax, $0x10
            shr $32, %rax
            out %eax, $0x10
            hlt`),
          0x1000,
        );
        const memory = backing === "anonymous memory" ? vm.allocateMemory(PAGES * PAGE) : vm.allocateRam(PAGES * PAGE).chunks[0]!;
        pager = createUserfaultPager({ regions: [{ memory, fd: f.fd, offset: 0 }], threads: 2 });
        vm.setMemoryRegion({ slot: 1, guestPhysAddr: RAM_GPA, memory });
        const vcpu = vm.createVcpu(0);
        vcpu.setCpuid(kvm.supportedCpuid());
        enterLongMode(vcpu, 0x1000);
        const halves: number[] = [];
        const dispatch = { pio: (_p: number, _s: number, _w: boolean, v: number) => (halves.push(v), 0), mmio: () => 0 };
        let result;
        for (let i = 0; i < 100_000 && (result = vcpu.run(dispatch)).reason === "yield"; i++);
        expect(result).toEqual({ reason: "hlt" });
        expect((BigInt(halves[1]!) << 32n) | BigInt(halves[0]!)).toBe(qwordSum(f.expected));
        const s = pager.stats();
        expect([s.pagesCopied, s.zeroPages, s.errors]).toEqual([f.dataPages, f.zeroPages, 0]);
        expect(s.faults).toBeGreaterThanOrEqual(PAGES);
        expect(Buffer.from(memory).equals(Buffer.from(f.expected))).toBe(true);
      } finally {
        pager?.close();
        vm.close();
        kvm.close();
        closeSync(f.fd);
      }
    });
  }
});
