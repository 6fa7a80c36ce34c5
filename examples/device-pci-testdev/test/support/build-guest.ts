import { execFile } from "node:child_process";
import { mkdir, readdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { GUEST_CFLAGS, guestSourceDir } from "@vmm/guest-kit";

const run = promisify(execFile);

/**
 * Builds a guest C program that lives outside @vmm/guest-kit against guest-kit's runtime (its entry code,
 * library, linker script and compiler flags) into an ELF64 image at `outDir`. guest-kit's buildGuest only
 * builds its own programs, so this repeats its two steps: compile every runtime source and the program, link.
 */
export async function buildExternalGuest(source: string, outDir: string): Promise<string> {
  const runtime = path.join(guestSourceDir, "runtime");
  const include = (await run("gcc", ["-print-file-name=include"])).stdout.trim();
  const cflags = GUEST_CFLAGS.map((f) => (f === "GCC_INCLUDE" ? include : f));
  const runtimeSources = (await readdir(runtime)).filter((f) => /\.(c|S)$/.test(f) && !f.startsWith("entry-")).sort();
  const sources = [path.join(runtime, "entry-elf.S"), ...runtimeSources.map((f) => path.join(runtime, f)), source];
  await mkdir(outDir, { recursive: true });
  const objects: string[] = [];
  for (const src of sources) {
    const obj = path.join(outDir, `${objects.length}-${path.basename(src)}.o`);
    await run("gcc", [...cflags, '-DGUEST_FORMAT="elf"', "-I", runtime, "-c", src, "-o", obj]);
    objects.push(obj);
  }
  const image = path.join(outDir, `${path.basename(source, ".c")}.elf`);
  const ldflags = ["-nostdlib", "-static", "-z", "max-page-size=4096", "-z", "noexecstack", "--no-warn-rwx-segments"];
  await run("ld", [...ldflags, "-T", path.join(guestSourceDir, "elf.ld"), "-o", image, ...objects]);
  return image;
}
