import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { GUEST_CFLAGS, guestSourceDir } from "@vmm/guest-kit";

const run = promisify(execFile);

/**
 * Builds a guest program that lives in this package (test/guest/NAME.c) against guest-kit's runtime, as a raw
 * image for 0x10000 (guest-kit's buildGuest only knows its own programs). Cached by a hash of the sources.
 */
export async function buildPackageGuest(name: string): Promise<string> {
  const runtime = join(guestSourceDir, "runtime");
  const sources = [
    join(runtime, "entry-raw.S"),
    ...readdirSync(runtime)
      .filter((f) => /\.(c|S)$/.test(f) && !f.startsWith("entry-"))
      .sort()
      .map((f) => join(runtime, f)),
    join(import.meta.dirname, "../guest", `${name}.c`),
  ];
  const script = join(guestSourceDir, "raw.ld");
  const include = (await run("gcc", ["-print-file-name=include"])).stdout.trim();
  const cflags = GUEST_CFLAGS.map((f) => (f === "GCC_INCLUDE" ? include : f));
  const hash = createHash("sha256").update(JSON.stringify(cflags));
  for (const f of [...sources, script, join(runtime, "guest.h")]) hash.update(f).update(readFileSync(f));
  const out = join(tmpdir(), "vmm-device-vesa-guests", `${name}-${hash.digest("hex").slice(0, 16)}`);
  const image = join(out, `${name}.bin`);
  if (existsSync(image)) return image;
  mkdirSync(join(out, ".."), { recursive: true });
  const work = mkdtempSync(`${out}.tmp-`);
  try {
    const objects: string[] = [];
    for (const [i, src] of sources.entries()) {
      const obj = join(work, `${i}.o`);
      await run("gcc", [...cflags, '-DGUEST_FORMAT="raw"', "-c", src, "-o", obj]);
      objects.push(obj);
    }
    const elf = join(work, `${name}.elf`);
    await run("ld", ["-nostdlib", "-static", "-z", "max-page-size=4096", "-z", "noexecstack", "--no-warn-rwx-segments", "-T", script, "-o", elf, ...objects]);
    await run("objcopy", ["-O", "binary", elf, join(work, `${name}.bin`)]);
    try {
      renameSync(work, out);
    } catch {
      if (!existsSync(image)) throw new Error(`could not publish ${out}`);
    }
    return image;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
