import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { GUEST_CFLAGS, buildGuest, listGuests } from "../src/index.js";

function hasToolchain(): boolean {
  try {
    for (const t of ["gcc", "ld", "objcopy"]) execFileSync(t, ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const toolchain = hasToolchain();
if (!toolchain) console.warn(`\n${"!".repeat(70)}\n!! @vmm/guest-kit: gcc/binutils missing: guest build tests SKIPPED\n${"!".repeat(70)}\n`);

describe("guest-kit", () => {
  it("lists its guest programs", async () => {
    const names = await listGuests();
    for (const n of ["hello", "exit-status", "reset", "rtc", "uart-irq", "emulation-failure", "smp", "spin", "pci-ecam", "mptable", "msi", "exceptions", "port-poke", "halt", "triple-fault"]) {
      expect(names).toContain(n);
    }
  });

  it("compiles with the flags this host's KVM requires", () => {
    for (const f of ["-ffreestanding", "-fno-builtin", "-mno-red-zone", "-mgeneral-regs-only", "-fno-stack-protector", "-fno-pic", "-fno-pie", "-fno-tree-loop-distribute-patterns", "-O1"]) {
      expect(GUEST_CFLAGS).toContain(f);
    }
    expect(GUEST_CFLAGS.join(" ")).not.toMatch(/march=native/);
  });

  it("refuses unknown programs and formats", async () => {
    await expect(buildGuest("no-such-program", { format: "raw" })).rejects.toThrow(/no guest program 'no-such-program'/);
    await expect(buildGuest("hello", { format: "coff" as "raw" })).rejects.toThrow(/unknown format/);
  });

  describe.skipIf(!toolchain)("builds", () => {
    it("a raw binary that starts with the real-mode entry", async () => {
      const path = await buildGuest("hello", { format: "raw" });
      const bytes = readFileSync(path);
      expect(path).toMatch(/\.guest-cache\/hello-raw-[0-9a-f]{16}\/hello\.bin$/);
      expect(bytes[0]).toBe(0xfa); // cli
      expect(bytes.length).toBeLessThan(0x9fc00 - 0x10000);
    });

    it("an ELF64 executable at 1 MiB entered at _start", async () => {
      const path = await buildGuest("hello", { format: "elf" });
      const b = readFileSync(path);
      expect([...b.subarray(0, 5)]).toEqual([0x7f, 0x45, 0x4c, 0x46, 2]);
      expect(b.readBigUInt64LE(24)).toBe(0x100000n);
    });

    it("caches by content: a second build returns the same file without rebuilding", async () => {
      const first = await buildGuest("exit-status", { format: "raw" });
      const mtime = statSync(first).mtimeMs;
      const second = await buildGuest("exit-status", { format: "raw" });
      expect(second).toBe(first);
      expect(statSync(second).mtimeMs).toBe(mtime);
    });
    it("says on stderr when it compiles a program, and nothing when the cache has it", async () => {
      const src = join(mkdtempSync(join(tmpdir(), "guest-kit-say-")), "say.c");
      writeFileSync(src, `#include "guest.h"\nint main(void) { return 0; } /* ${Date.now()} ${Math.random()} */\n`);
      const said: string[] = [];
      const write = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => (said.push(String(chunk)), true));
      try {
        const path = await buildGuest("say", { format: "raw", source: src });
        expect(said).toEqual([`guest-kit: compiling guest program say (raw), not in the cache yet: ${dirname(path)}\n`]);
        await buildGuest("say", { format: "raw", source: src });
        expect(said).toHaveLength(1);
      } finally {
        write.mockRestore();
      }
    });

    it("builds a program kept outside guest-kit, which includes the runtime as guest.h", async () => {
      const dir = mkdtempSync(join(tmpdir(), "guest-kit-ext-"));
      const src = join(dir, "external.c");
      writeFileSync(src, '#include "guest.h"\nint main(void) { printf("external\\n"); return 7; }\n');
      const path = await buildGuest("external", { format: "elf", source: src });
      expect(path).toMatch(/\.guest-cache\/external-elf-[0-9a-f]{16}\/external\.elf$/);
      // A header beside the program is part of the build: changing it gives a new image.
      writeFileSync(join(dir, "local.h"), "#define ANSWER 7\n");
      writeFileSync(src, '#include "guest.h"\n#include "local.h"\nint main(void) { return ANSWER; }\n');
      const withHeader = await buildGuest("external", { format: "elf", source: src });
      writeFileSync(join(dir, "local.h"), "#define ANSWER 8\n");
      expect(await buildGuest("external", { format: "elf", source: src })).not.toBe(withHeader);
      writeFileSync(src, "int main(void) { return undefined_symbol; }\n");
      await expect(buildGuest("external", { format: "elf", source: src })).rejects.toThrow(/compiling .*external\.c failed: .*undefined_symbol/s);
      await expect(buildGuest("external", { format: "elf", source: join(dir, "missing.c") })).rejects.toThrow(/does not exist/);
    });
  });
});
