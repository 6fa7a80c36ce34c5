// Builds test/guest/*.c against guest-kit's freestanding runtime (ELF, entered in 64-bit mode), for KVM tests.
import { execFile } from "node:child_process";
import { mkdtemp, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { GUEST_CFLAGS, guestSourceDir } from "@vmm/guest-kit";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

export async function buildVirtioGuest(name: string): Promise<string> {
  const include = (await run("gcc", ["-print-file-name=include"])).stdout.trim();
  const runtime = join(guestSourceDir, "runtime");
  const cflags = [...GUEST_CFLAGS.map((f) => (f === "GCC_INCLUDE" ? include : f)), "-I", runtime, '-DGUEST_FORMAT="elf"'];
  const sources = [
    join(runtime, "entry-elf.S"),
    ...(await readdir(runtime)).filter((f) => /\.(c|S)$/.test(f) && !f.startsWith("entry-")).sort().map((f) => join(runtime, f)),
    join(here, "guest", `${name}.c`),
  ];
  const work = await mkdtemp(join(tmpdir(), `vmm-virtio-guest-`));
  const objects: string[] = [];
  for (const src of sources) {
    const obj = join(work, `${objects.length}.o`);
    await run("gcc", [...cflags, "-c", src, "-o", obj]);
    objects.push(obj);
  }
  const elf = join(work, `${name}.elf`);
  await run("ld", ["-nostdlib", "-static", "-z", "max-page-size=4096", "-z", "noexecstack", "--no-warn-rwx-segments", "-T", join(guestSourceDir, "elf.ld"), "-o", elf, ...objects]);
  return elf;
}
