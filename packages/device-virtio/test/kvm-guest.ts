// Builds test/guest/*.c against guest-kit's freestanding runtime (ELF, entered in 64-bit mode), for KVM tests.
// Builds are cached in the temp directory under a hash of every source and flag, so reruns cost one hash.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { GUEST_CFLAGS, guestSourceDir } from "@vmm/guest-kit";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const LDFLAGS = ["-nostdlib", "-static", "-z", "max-page-size=4096", "-z", "noexecstack", "--no-warn-rwx-segments"];

export async function buildVirtioGuest(name: string): Promise<string> {
  const include = (await run("gcc", ["-print-file-name=include"])).stdout.trim();
  const runtime = join(guestSourceDir, "runtime");
  const cflags = [...GUEST_CFLAGS.map((f) => (f === "GCC_INCLUDE" ? include : f)), "-I", runtime, '-DGUEST_FORMAT="elf"'];
  const runtimeFiles = (await readdir(runtime)).sort();
  const sources = [
    join(runtime, "entry-elf.S"),
    ...runtimeFiles.filter((f) => /\.(c|S)$/.test(f) && !f.startsWith("entry-")).map((f) => join(runtime, f)),
    join(here, "guest", `${name}.c`),
  ];
  const script = join(guestSourceDir, "elf.ld");
  const hash = createHash("sha256").update(JSON.stringify({ cflags, LDFLAGS, name }));
  for (const f of [...sources, ...runtimeFiles.filter((f) => f.endsWith(".h")).map((f) => join(runtime, f)), script]) {
    hash.update(await readFile(f));
  }
  const outDir = join(tmpdir(), `vmm-virtio-guest-${name}-${hash.digest("hex").slice(0, 16)}`);
  const elf = join(outDir, `${name}.elf`);
  if (existsSync(elf)) return elf;
  const work = await mkdtemp(join(tmpdir(), "vmm-virtio-guest-build-"));
  try {
    const objects: string[] = [];
    for (const src of sources) {
      const obj = join(work, `${objects.length}.o`);
      await run("gcc", [...cflags, "-c", src, "-o", obj]);
      objects.push(obj);
    }
    await run("ld", [...LDFLAGS, "-T", script, "-o", join(work, `${name}.elf`), ...objects]);
    await rename(work, outDir).catch(() => {
      if (!existsSync(elf)) throw new Error(`could not publish ${outDir}`);
    });
    return elf;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
