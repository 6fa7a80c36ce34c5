// The arm64 half of the addon is checked on any host with Debian's aarch64 cross compiler
// (g++-aarch64-linux-gnu): its sources compile and link against the running node's headers, and the numbers the
// TypeScript side encodes match the arm64 uapi headers that toolchain ships. Without the compiler these suites
// skip with a loud banner.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { hostToolAvailable, kvmTestGate } from "@vmm/test-support";
import { packageRoot } from "../../src/native.js";

export const CROSS_CXX = "aarch64-linux-gnu-g++";
export const CROSS_READELF = "aarch64-linux-gnu-readelf";

/** Whether the cross compiler runs; when not, the banner says what to install. */
export const crossGate = kvmTestGate("@vmm/kvm-native", {
  what: "arm64 cross-compile checks",
  check: () =>
    hostToolAvailable(CROSS_CXX)
      ? { ok: true }
      : { ok: false, reason: `${CROSS_CXX} is missing (apt-get install g++-aarch64-linux-gnu)` },
});

const run = promisify(execFile);

/**
 * Runs a cross tool at the lowest CPU priority (the suites that time guests share the machine's cores with it);
 * resolves with its output, rejects with an Error carrying its stderr.
 */
export async function cross(args: string[], tool = CROSS_CXX): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run("nice", ["-n", "19", tool, ...args], { maxBuffer: 16 << 20 });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`${tool} ${args.join(" ")}\n${err.stderr ?? err.message}`);
  }
}

/** The include directories node-gyp gives the addon: the running node's headers and node-addon-api's. */
export function addonIncludes(): string[] {
  const require = createRequire(join(packageRoot, "package.json"));
  const addonApi = dirname(require.resolve("node-addon-api/package.json"));
  return [join(dirname(process.execPath), "..", "include", "node"), addonApi];
}

interface GypTarget {
  target_name: string;
  sources: string[];
  conditions?: Array<[string, { sources?: string[] }]>;
  defines: string[];
  cflags_cc: string[];
}

/** binding.gyp's one target (the file is kept valid JSON, which gyp reads too). */
export function gypTarget(): GypTarget {
  const gyp = JSON.parse(readFileSync(join(packageRoot, "binding.gyp"), "utf8")) as { targets: GypTarget[] };
  return gyp.targets[0]!;
}

/** gyp's name for an architecture (node-gyp's target_arch). */
export const GYP_ARCH = { x86_64: "x64", arm64: "arm64" } as const;

/** The sources binding.gyp compiles for `targetArch` ("x64", "arm64"), as absolute paths. */
export function gypSources(targetArch: string): string[] {
  const t = gypTarget();
  const extra = (t.conditions ?? []).flatMap(([cond, body]) => {
    const m = /^target_arch==['"](\w+)['"]$/.exec(cond.replace(/\s+/g, ""));
    if (!m) throw new Error(`binding.gyp condition ${cond} is not target_arch=='...': teach test/support/cross.ts`);
    return m[1] === targetArch ? (body.sources ?? []) : [];
  });
  return [...t.sources, ...extra].map((s) => resolve(packageRoot, s));
}

/**
 * The compiler flags node-gyp uses for the addon: binding.gyp's defines and cflags_cc, node-gyp's own defines
 * that change what the headers declare, position-independent code, and -Werror so a warning fails the check.
 */
export function addonCompileFlags(): string[] {
  const t = gypTarget();
  return [
    "-fPIC",
    "-pthread",
    "-fno-rtti",
    ...t.cflags_cc,
    "-Werror",
    ...t.defines.map((d) => `-D${d}`),
    `-DNODE_GYP_MODULE_NAME=${t.target_name}`,
    "-DBUILDING_NODE_EXTENSION",
    "-D_LARGEFILE_SOURCE",
    "-D_FILE_OFFSET_BITS=64",
    ...addonIncludes().map((d) => `-I${d}`),
  ];
}
