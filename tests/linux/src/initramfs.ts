// The test guest's initramfs: init/init.c built static without libc, packed as an uncompressed "newc" cpio
// (the kernel's initramfs format, Documentation/driver-api/early-userspace/buffer-format.rst).
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { linuxCacheDir } from "./kernel.js";

const run = promisify(execFile);
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const initDir = join(packageRoot, "init");
export const initSource = join(initDir, "init.c");

// No SSE/AVX in guest userspace: the kernel runs with XSAVE hidden (docs: the linux-guest recipe).
const CFLAGS = ["-Os", "-static", "-nostdlib", "-ffreestanding", "-fno-builtin", "-fno-stack-protector", "-fno-pic",
  "-no-pie", "-mgeneral-regs-only", "-fno-asynchronous-unwind-tables", "-Wall", "-Werror", "-Wl,--build-id=none"];

export interface CpioEntry {
  name: string;
  /** Full st_mode: type and permission bits. */
  mode: number;
  data?: Uint8Array;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

/** Packs entries as a newc cpio archive with its TRAILER!!! record. */
export function packCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const pad4 = (n: number) => Buffer.alloc((4 - (n % 4)) % 4);
  const record = (ino: number, name: string, mode: number, data: Uint8Array) => {
    const nameBytes = Buffer.from(`${name}\0`, "utf8");
    const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, nameBytes.length, 0];
    const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`, "ascii");
    parts.push(header, nameBytes, pad4(header.length + nameBytes.length), Buffer.from(data), pad4(data.length));
  };
  entries.forEach((e, i) => record(i + 1, e.name, e.mode, e.data ?? new Uint8Array()));
  record(0, "TRAILER!!!", 0, new Uint8Array());
  return Buffer.concat(parts);
}

/** Builds (or finds in the cache) the initramfs and returns its path. */
export async function buildInitramfs(): Promise<string> {
  // init.c includes its siblings (dhcp.h, ipv6.h): the cache key covers every file there.
  const names = (await readdir(initDir)).sort();
  const hash = createHash("sha256");
  for (const name of names) hash.update(name).update(await readFile(join(initDir, name)));
  const gcc = (await run("gcc", ["--version"])).stdout.split("\n")[0];
  const key = hash.update(JSON.stringify({ CFLAGS, gcc })).digest("hex").slice(0, 16);
  const dir = join(linuxCacheDir(), "initramfs");
  const out = join(dir, `init-${key}.cpio`);
  if (existsSync(out)) return out;
  await mkdir(dir, { recursive: true });
  const work = await mkdtemp(join(dir, ".build-"));
  try {
    const exe = join(work, "init");
    try {
      await run("gcc", [...CFLAGS, "-o", exe, initSource]);
    } catch (e) {
      throw new Error(`building the test init failed: ${(e as { stderr?: string }).stderr?.trim() ?? String(e)}`);
    }
    const archive = packCpio([
      { name: "dev", mode: S_IFDIR | 0o755 },
      { name: "proc", mode: S_IFDIR | 0o555 },
      { name: "sys", mode: S_IFDIR | 0o555 },
      { name: "init", mode: S_IFREG | 0o755, data: await readFile(exe) },
    ]);
    const tmp = join(work, "init.cpio");
    await writeFile(tmp, archive);
    await rename(tmp, out);
    return out;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
