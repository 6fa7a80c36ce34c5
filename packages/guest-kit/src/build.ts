import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);

export type GuestFormat = "raw" | "elf";

/** Compiler flags this host's emulated KVM requires of guest C code (docs: host-kvm.md). */
export const GUEST_CFLAGS: readonly string[] = [
  "-m64",
  "-ffreestanding",
  "-fno-builtin",
  "-mno-red-zone",
  "-mgeneral-regs-only",
  "-fno-stack-protector",
  "-fno-pic",
  "-fno-pie",
  "-fno-tree-loop-distribute-patterns",
  "-fno-asynchronous-unwind-tables",
  "-nostdinc",
  "-isystem",
  "GCC_INCLUDE",
  "-O1",
  "-Wall",
  "-Werror",
];

const LDFLAGS = ["-nostdlib", "-static", "-z", "max-page-size=4096", "-z", "noexecstack", "--no-warn-rwx-segments"];

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Where guest sources live (runtime/ and programs/). */
export const guestSourceDir = join(packageRoot, "guest");
/** Content-addressed build cache (gitignored). */
export const guestCacheDir = join(packageRoot, ".guest-cache");

const runtimeDir = join(guestSourceDir, "runtime");
const programsDir = join(guestSourceDir, "programs");

/** The guest programs that can be built (file names in guest/programs without .c). */
export async function listGuests(): Promise<string[]> {
  return (await readdir(programsDir)).filter((f) => f.endsWith(".c")).map((f) => f.slice(0, -2)).sort();
}

async function runtimeSources(format: GuestFormat): Promise<string[]> {
  const files = (await readdir(runtimeDir)).filter((f) => /\.(c|S)$/.test(f) && !/^entry-/.test(f)).sort();
  return [`entry-${format}.S`, ...files].map((f) => join(runtimeDir, f));
}

let gccInclude: Promise<string> | undefined;
/** gcc's own header directory (stdarg.h) while keeping the host's libc headers out. */
function compilerIncludeDir(): Promise<string> {
  gccInclude ??= run("gcc", ["-print-file-name=include"]).then((r) => r.stdout.trim());
  return gccInclude;
}

async function tool(cmd: string, args: string[], what: string): Promise<void> {
  try {
    await run(cmd, args, { maxBuffer: 16 * 1024 * 1024 });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`guest-kit: ${what} failed: ${err.stderr?.trim() || err.message}`);
  }
}

const inflight = new Map<string, Promise<string>>();

export interface BuildOptions {
  format: GuestFormat;
  /** A program kept outside guest-kit (an absolute path to a .c file); `name` then only names the build. */
  source?: string;
}

/**
 * Builds guest program `name` for `format` ("raw": a flat binary for 0x10000 in real mode; "elf": an ELF64
 * executable at 1 MiB entered in 64-bit mode) and returns the path of the image. Builds are cached by a hash of
 * every source, the linker script, the flags and the compiler version, so a second call costs one hash.
 * Programs include the runtime as "guest.h".
 */
export async function buildGuest(name: string, options: BuildOptions): Promise<string> {
  const format = options.format;
  if (format !== "raw" && format !== "elf") throw new Error(`guest-kit: unknown format '${String(format)}' (raw or elf)`);
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`guest-kit: bad guest name '${name}'`);
  let source = options.source;
  if (source === undefined) {
    const available = await listGuests();
    if (!available.includes(name)) throw new Error(`guest-kit: no guest program '${name}' (have: ${available.join(", ")})`);
    source = join(programsDir, `${name}.c`);
  } else if (!existsSync(source)) {
    throw new Error(`guest-kit: guest source ${source} does not exist`);
  }
  const key = `${source}/${format}`;
  let p = inflight.get(key);
  if (!p) {
    p = build(name, source, format);
    inflight.set(key, p);
    // Only concurrent callers share a build; a later call re-hashes the sources, which may have changed.
    const settled = () => inflight.delete(key);
    p.then(settled, settled);
  }
  return p;
}

async function build(name: string, program: string, format: GuestFormat): Promise<string> {
  const include = await compilerIncludeDir();
  const cflags = [...GUEST_CFLAGS.map((f) => (f === "GCC_INCLUDE" ? include : f)), "-I", runtimeDir];
  const sources = [...(await runtimeSources(format)), program];
  const script = join(guestSourceDir, `${format}.ld`);
  // The runtime's headers and those beside the program (it may include local ones) decide the build too.
  const headersIn = async (dir: string) => (await readdir(dir)).filter((f) => f.endsWith(".h")).sort().map((f) => join(dir, f));
  const headers = [...(await headersIn(runtimeDir)), ...(dirname(program) === runtimeDir ? [] : await headersIn(dirname(program)))];
  const hash = createHash("sha256");
  const version = (await run("gcc", ["--version"])).stdout.split("\n")[0];
  hash.update(JSON.stringify({ cflags, ldflags: LDFLAGS, format, version, name }));
  for (const f of [...sources, ...headers, script]) {
    hash.update(f.startsWith(guestSourceDir) ? f.slice(guestSourceDir.length) : f);
    hash.update(await readFile(f));
  }
  const digest = hash.digest("hex").slice(0, 16);
  const outDir = join(guestCacheDir, `${name}-${format}-${digest}`);
  const image = join(outDir, format === "raw" ? `${name}.bin` : `${name}.elf`);
  if (existsSync(image)) return image;

  // Compiling takes seconds where the cache takes none: say so, once per build, so a wait has a reason.
  process.stderr.write(`guest-kit: compiling guest program ${name} (${format}), not in the cache yet: ${outDir}\n`);
  await mkdir(guestCacheDir, { recursive: true });
  const work = await mkdtemp(join(guestCacheDir, `.tmp-${name}-`));
  try {
    const objects: string[] = [];
    for (const src of sources) {
      const obj = join(work, `${objects.length}-${src.split("/").pop()}.o`);
      await tool("gcc", [...cflags, `-DGUEST_FORMAT="${format}"`, "-c", src, "-o", obj], `compiling ${src.startsWith(guestSourceDir) ? src.slice(guestSourceDir.length + 1) : src}`);
      objects.push(obj);
    }
    const elf = join(work, `${name}.elf`);
    await tool("ld", [...LDFLAGS, "-T", script, "-o", elf, ...objects], `linking ${name}`);
    if (format === "raw") await tool("objcopy", ["-O", "binary", elf, join(work, `${name}.bin`)], `objcopy ${name}`);
    // Publish atomically: concurrent test workers may build the same program.
    try {
      await rename(work, outDir);
    } catch {
      if (!existsSync(image)) throw new Error(`guest-kit: could not publish ${outDir}`);
    }
    return image;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
