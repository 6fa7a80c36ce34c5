import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { Kvm, KvmError, MAX_MEMORY_CHUNK } from "../src/index.js";
import { native, packageRoot } from "../src/native.js";
import { assemble } from "./support/assemble.js";
import { Recorder, runSync } from "./support/guest.js";
import { kvmOk } from "./support/kvm.js";
import { enterLongMode, writePaging } from "./support/paging.js";

// Guest RAM above one ArrayBuffer's limit (4 GiB on Node 20). It used to abort the process ("free(): double
// free", SIGABRT), so the tests run in a child vitest and the parent checks how that child ended.
const CHILD_ENV = "KVM_NATIVE_BIG_MEMORY_CHILD";
const inChild = process.env[CHILD_ENV] === "1";
const GiB = 2 ** 30;

function runChild(): Promise<{ status: number | null; signal: NodeJS.Signals | null; output: string }> {
  const require = createRequire(import.meta.url);
  const vitest = join(dirname(require.resolve("vitest/package.json")), "vitest.mjs");
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [vitest, "run", fileURLToPath(import.meta.url)], {
      cwd: packageRoot,
      env: { ...process.env, [CHILD_ENV]: "1", NO_COLOR: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 150_000);
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, output });
    });
  });
}

describe.skipIf(!kvmOk || inChild)("guest RAM above 4 GiB", () => {
  it("passes every big-memory test in a child process, which exits normally", async () => {
    const { status, signal, output } = await runChild();
    // glibc's own words, not "double free" alone: vitest prints slow tests' titles, and one title says it.
    expect(output).not.toMatch(/free\(\): double free|Worker exited unexpectedly|Aborted/);
    expect({ status, signal }, output.slice(-4000)).toEqual({ status: 0, signal: null });
    const summary = /Tests\s+(\d+) passed(?: \| (\d+) skipped)? \((\d+)\)/.exec(output);
    expect(summary, output.slice(-4000)).not.toBeNull();
    expect(Number(summary![2] ?? 0)).toBe(1); // only this launcher is skipped in the child
    expect(Number(summary![1])).toBe(Number(summary![3]) - 1);
  }, 160_000);
});

/** Forces full collections (and Node's deferred finalizers) so that unmapping can be observed. */
async function collect(): Promise<void> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

/** Bytes of address space this process has mapped (VmSize). */
function mappedBytes(): number {
  return Number(/VmSize:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;
}

describe.skipIf(!kvmOk || !inChild)("guest RAM above 4 GiB (child)", () => {
  it("refuses one Uint8Array above the ArrayBuffer limit with an error (it aborted with a double free)", async () => {
    const before = mappedBytes();
    const kvm = Kvm.open();
    const vm = kvm.createVm();
    expect(() => vm.allocateMemory(5 * GiB)).toThrow(RangeError);
    vm.close();
    kvm.close();
    await collect();
    expect(mappedBytes() - before).toBeLessThan(GiB);
  });

  /** Runs a guest in `size` bytes of RAM; returns with no reference to the RAM left. */
  function exercise(size: number): void {
    const kvm = Kvm.open();
    const vm = kvm.createVm();
    const ram = vm.allocateRam(size);
    expect(ram.size).toBe(size);
    expect(ram.chunks.length).toBe(Math.ceil(size / MAX_MEMORY_CHUNK));
    expect(ram.regions(0).at(-1)!.gpa + ram.chunks.at(-1)!.byteLength).toBe(size);
    vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram });
    const low = ram.chunks[0]!;
    const top = ram.chunks.at(-1)!;
    top[top.length - 1] = 0xa7; // through the JS view: the guest must see it at guest-physical size-1

    const vcpu = vm.createVcpu(0);
    vcpu.setCpuid(kvm.supportedCpuid());
    writePaging(low, [{ virt: BigInt(size - 2 * 2 ** 20), phys: BigInt(size - 2 * 2 ** 20) }]);
    low.set(
      assemble(
        `.code64
        movabs $${size - 1}, %rbx
        mov (%rbx), %al; out %al, $0x10     # what JS wrote at the top
        movb $0x5c, -1(%rbx)                # JS reads this one byte below the top
        hlt`,
        0x1000,
      ),
      0x1000,
    );
    enterLongMode(vcpu, 0x1000);
    const r = new Recorder(vcpu);
    expect(runSync(vcpu, r)).toEqual({ reason: "hlt" });
    expect(r.pios).toEqual([[0x10, 1, true, 0xa7]]);
    expect(top[top.length - 2]).toBe(0x5c);
    vm.close();
    kvm.close();
  }

  it.each([8, 64])("runs a guest with %d GiB of RAM that reads and writes the top byte, then unmaps it once", async (gib) => {
    const before = mappedBytes();
    exercise(gib * GiB);
    await collect();
    // Unmapped once all chunks are gone (a second munmap or free would have aborted this process).
    expect(mappedBytes() - before).toBeLessThan(GiB);
  }, 60_000);

  it("maps nothing and throws a clear error for sizes that cannot be mapped", async () => {
    const kvm = Kvm.open();
    const vm = kvm.createVm();
    try {
      const before = mappedBytes();
      // Beyond the 47-bit user address space: mmap fails cleanly.
      expect(() => vm.allocateRam(2 ** 48)).toThrow(KvmError);
      expect(() => vm.allocateRam(2 ** 48)).toThrow(/cannot map 281474976710656 bytes of guest memory; mmap failed: ENOMEM/);
      // One Uint8Array cannot exceed the limit: a RangeError, not an abort.
      expect(() => vm.allocateMemory(MAX_MEMORY_CHUNK + 4096)).toThrow(/use allocateRam/);
      expect(() => native().allocateMemory(8 * GiB, 8 * GiB)).toThrow(/cannot be made an ArrayBuffer/);
      expect(() => vm.allocateRam(8 * GiB, { chunkSize: MAX_MEMORY_CHUNK + 4096 })).toThrow(RangeError);
      // A memslot beyond the guest-physical addresses KVM allows (the host's MAXPHYADDR) names slot, size, address.
      const beyond = vm.allocateRam(2 * 2 ** 20);
      expect(() => vm.setMemoryRegion({ slot: 0, guestPhysAddr: 2 ** 52, memory: beyond })).toThrow(
        /KVM_SET_USER_MEMORY_REGION failed: EINVAL .*memslot 0: 2097152 bytes at guest-physical 0x10000000000000 cannot be mapped/,
      );
      await collect();
      expect(mappedBytes() - before).toBeLessThan(GiB);
    } finally {
      vm.close();
      kvm.close();
    }
  }, 60_000);
});
