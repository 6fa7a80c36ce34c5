// Builds a guest C program kept outside @vmm/guest-kit (e.g. guests/demo.c) against guest-kit's runtime, as an
// ELF64 image entered in 64-bit mode. guest-kit's buildGuest only builds its own programs; this does the same two
// steps (compile the runtime and the program with guest-kit's flags, link with its script) and caches by content.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, rename, rm, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { GUEST_CFLAGS, guestSourceDir } from "@vmm/guest-kit";

const run = promisify(execFile);
const LDFLAGS = ["-nostdlib", "-static", "-z", "max-page-size=4096", "-z", "noexecstack", "--no-warn-rwx-segments"];

/** Returns the path of the built ELF image of `source`. */
export async function buildGuestProgram(source) {
  const runtime = path.join(guestSourceDir, "runtime");
  const include = (await run("gcc", ["-print-file-name=include"])).stdout.trim();
  const cflags = [...GUEST_CFLAGS.map((f) => (f === "GCC_INCLUDE" ? include : f)), "-I", runtime, '-DGUEST_FORMAT="elf"'];
  const runtimeFiles = (await readdir(runtime)).filter((f) => /\.(c|S|h)$/.test(f) && !f.startsWith("entry-")).sort();
  const sources = [path.join(runtime, "entry-elf.S"), ...runtimeFiles.filter((f) => !f.endsWith(".h")).map((f) => path.join(runtime, f)), source];
  const script = path.join(guestSourceDir, "elf.ld");

  const hash = createHash("sha256").update(JSON.stringify({ cflags, LDFLAGS }));
  for (const f of [...sources, ...runtimeFiles.map((f) => path.join(runtime, f)), script]) hash.update(f).update(await readFile(f));
  const name = path.basename(source, ".c");
  const outDir = path.join(tmpdir(), "vmm-guests", `${name}-${hash.digest("hex").slice(0, 16)}`);
  const image = path.join(outDir, `${name}.elf`);
  if (existsSync(image)) return image;

  await mkdir(path.dirname(outDir), { recursive: true });
  const work = await mkdtemp(path.join(path.dirname(outDir), `.tmp-${name}-`));
  try {
    const objects = [];
    for (const src of sources) {
      const obj = path.join(work, `${objects.length}-${path.basename(src)}.o`);
      await run("gcc", [...cflags, "-c", src, "-o", obj]);
      objects.push(obj);
    }
    await run("ld", [...LDFLAGS, "-T", script, "-o", path.join(work, `${name}.elf`), ...objects]);
    try {
      await rename(work, outDir);
    } catch {
      if (!existsSync(image)) throw new Error(`could not publish ${outDir}`);
    }
    return image;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
