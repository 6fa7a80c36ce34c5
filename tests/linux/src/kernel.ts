// Builds the test kernel from Debian's linux-source-6.1 once per machine: tinyconfig plus kernel/config.fragment,
// patched with kernel/host-workarounds.patch, cached by a hash of all three under the user's cache directory.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { copyFile, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { availableParallelism, homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BuildProgress, formatDuration } from "./build-progress.js";
import { withLock } from "./lock.js";

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
export const kernelConfigFragment = join(packageRoot, "kernel", "config.fragment");
export const kernelPatch = join(packageRoot, "kernel", "host-workarounds.patch");
/** Debian's linux-source-6.1 package installs this tarball. */
export const LINUX_SOURCE_TARBALL = "/usr/src/linux-source-6.1.tar.xz";

/** Where built kernels live: outside the work tree, so every checkout on this machine shares them. */
export function linuxCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "vmm", "linux");
}

export interface TestKernel {
  bzImage: string;
  /** The final .config the kernel was built with. */
  config: string;
  /** The cache key: a hash of the source tarball, the fragment's settings and the patch. */
  key: string;
}

export type Progress = (line: string) => void;

/** How long a first build takes, as measured on this project's 2-core machines (idle to busy). */
export const FIRST_BUILD_DURATION = "3-17 minutes on 2 cores";
/** Objects a full build of this config compiles (make's CC and AS lines: 1,196 counted on 2026-12-04). */
export const FULL_BUILD_OBJECTS = 1_200;

const defaultProgress: Progress = (line) => process.stderr.write(`[linux-kernel] ${line}\n`);

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** The cache key of the kernel these inputs build, or why it cannot be built here. */
export async function kernelKey(): Promise<{ ok: true; key: string; sourceHash: string } | { ok: false; reason: string }> {
  if (!existsSync(LINUX_SOURCE_TARBALL)) {
    return { ok: false, reason: `${LINUX_SOURCE_TARBALL} is missing (apt-get install linux-source-6.1)` };
  }
  const sourceHash = await sha256File(LINUX_SOURCE_TARBALL);
  const hash = createHash("sha256");
  hash.update(sourceHash);
  // The settings, not the fragment's text: a comment edit must not cost a rebuild.
  const settings = [...fragmentSettings(await readFile(kernelConfigFragment, "utf8"))].map(([k, v]) => `${k}=${v}`).sort();
  hash.update(settings.join("\n"));
  hash.update(await readFile(kernelPatch));
  return { ok: true, key: hash.digest("hex").slice(0, 16), sourceHash };
}

/** The kernel if it is already built, without building it. */
export async function cachedTestKernel(): Promise<TestKernel | undefined> {
  const k = await kernelKey();
  if (!k.ok) return undefined;
  const dir = join(linuxCacheDir(), k.key);
  const kernel = { bzImage: join(dir, "bzImage"), config: join(dir, "config"), key: k.key };
  return existsSync(kernel.bzImage) ? kernel : undefined;
}

function run(cmd: string, args: string[], cwd: string, onLine?: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let tail = "";
    let partial = "";
    const take = (chunk: Buffer) => {
      const text = partial + chunk.toString("utf8");
      const lines = text.split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        tail = (tail + line + "\n").slice(-4000);
        onLine?.(line);
      }
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(" ")} failed (exit ${code}):\n${tail}`));
    });
  });
}

/** Every CONFIG_ line the fragment sets, as the final .config must show it. */
function fragmentSettings(fragment: string): Map<string, string> {
  const want = new Map<string, string>();
  for (const line of fragment.split("\n")) {
    const set = /^(CONFIG_\w+)=(.*)$/.exec(line);
    const unset = /^# (CONFIG_\w+) is not set$/.exec(line);
    if (set) want.set(set[1]!, set[2]!);
    else if (unset) want.set(unset[1]!, "n");
  }
  return want;
}

function configValues(config: string): Map<string, string> {
  const have = new Map<string, string>();
  for (const line of config.split("\n")) {
    const set = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (set) have.set(set[1]!, set[2]!);
  }
  return have;
}

/**
 * The test kernel, built on first use (FIRST_BUILD_DURATION, with a progress line every 30 s) and cached by content
 * hash.
 * Concurrent callers on one machine wait for one build.
 */
export async function buildTestKernel(progress: Progress = defaultProgress): Promise<TestKernel> {
  const k = await kernelKey();
  if (!k.ok) throw new Error(`cannot build the test kernel: ${k.reason}`);
  const cache = linuxCacheDir();
  const outDir = join(cache, k.key);
  const kernel: TestKernel = { bzImage: join(outDir, "bzImage"), config: join(outDir, "config"), key: k.key };
  if (existsSync(kernel.bzImage)) return kernel;
  await mkdir(cache, { recursive: true });
  return withLock(join(cache, "build.lock"), progress, async () => {
    if (existsSync(kernel.bzImage)) return kernel; // another process built it while we waited
    const started = Date.now();
    const elapsed = () => formatDuration(Date.now() - started);
    // One unpacked, patched tree per source and patch; a fragment change rebuilds incrementally in it.
    const patchHash = createHash("sha256").update(await readFile(kernelPatch)).digest("hex").slice(0, 8);
    const tree = join(cache, `tree-${k.sourceHash.slice(0, 12)}-${patchHash}`);
    const fresh = !existsSync(join(tree, ".vmm-ready"));
    if (fresh) {
      progress(`building the test kernel, the first build on this machine: ${FIRST_BUILD_DURATION} (cache: ${cache})`);
      progress(`unpacking ${LINUX_SOURCE_TARBALL}`);
      const partial = `${tree}.partial`;
      await rm(partial, { recursive: true, force: true });
      await mkdir(partial, { recursive: true });
      await run("tar", ["-xf", LINUX_SOURCE_TARBALL, "-C", partial, "--strip-components=1"], partial);
      progress(`applying ${kernelPatch} (${elapsed()})`);
      await run("patch", ["-p1", "-i", kernelPatch], partial);
      await writeFile(join(partial, ".vmm-ready"), "");
      await rm(tree, { recursive: true, force: true });
      await rename(partial, tree);
    } else {
      progress(`building the test kernel in ${tree}: incremental, only what the new config changes (cache: ${cache})`);
    }
    progress(`configuring: tinyconfig + ${kernelConfigFragment}`);
    const make = (args: string[], onLine?: (line: string) => void) => run("make", ["ARCH=x86_64", ...args], tree, onLine);
    await make(["tinyconfig"]);
    const fragment = await readFile(kernelConfigFragment, "utf8");
    await writeFile(join(tree, "kernel", "configs", "vmm-test.config"), fragment);
    await make(["vmm-test.config"]);
    const have = configValues(await readFile(join(tree, ".config"), "utf8"));
    const wrong = [...fragmentSettings(fragment)].filter(([name, value]) => (have.get(name) ?? "n") !== value);
    if (wrong.length > 0) {
      const list = wrong.map(([name, value]) => `${name}=${value} (got ${have.get(name) ?? "n"})`).join(", ");
      throw new Error(`the kernel config did not take these fragment settings (a dependency is missing): ${list}`);
    }
    const jobs = String(availableParallelism());
    progress(`compiling with -j${jobs} (${elapsed()}); progress every 30 s`);
    const compiling = new BuildProgress(progress, { expectedObjects: fresh ? FULL_BUILD_OBJECTS : undefined });
    try {
      await make([`-j${jobs}`, "bzImage"], (line) => compiling.line(line));
    } finally {
      compiling.stop();
    }
    const partialOut = `${outDir}.partial`;
    await rm(partialOut, { recursive: true, force: true });
    await mkdir(partialOut, { recursive: true });
    await copyFile(join(tree, "arch", "x86", "boot", "bzImage"), join(partialOut, "bzImage"));
    await copyFile(join(tree, ".config"), join(partialOut, "config"));
    await rename(partialOut, outDir);
    progress(`built in ${elapsed()} (${compiling.compiled.toLocaleString("en")} objects compiled); cached for every checkout on this machine: ${kernel.bzImage}`);
    return kernel;
  });
}
