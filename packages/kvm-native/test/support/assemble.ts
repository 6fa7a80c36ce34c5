// Assembles tiny guest programs with binutils at test time (as + ld + objcopy), linked at `base`.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function assemble(source: string, base = 0x1000): Uint8Array {
  const dir = mkdtempSync(join(tmpdir(), "kvm-guest-"));
  try {
    writeFileSync(join(dir, "g.s"), source);
    execFileSync("as", ["--64", "-o", join(dir, "g.o"), join(dir, "g.s")], { stdio: "pipe" });
    execFileSync("ld", ["-m", "elf_x86_64", "-Ttext", `0x${base.toString(16)}`, "-e", `0x${base.toString(16)}`, "-o", join(dir, "g.elf"), join(dir, "g.o")], { stdio: "pipe" });
    execFileSync("objcopy", ["-O", "binary", "-j", ".text", join(dir, "g.elf"), join(dir, "g.bin")], { stdio: "pipe" });
    return new Uint8Array(readFileSync(join(dir, "g.bin")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
