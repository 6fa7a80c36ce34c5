// The arm64 half of the addon cannot run here (no arm64 KVM), so it is kept from rotting by building it: every
// source binding.gyp compiles for target_arch arm64 goes through Debian's aarch64 cross compiler against the
// running node's headers with the addon's flags and -Werror, the objects link into an arm64 kvm_native.node whose
// only unresolved symbols are Node's (N-API, libuv), and that module carries the names the TypeScript side calls.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { packageRoot } from "../src/native.js";
import { ARCH_ONLY, SHARED } from "./support/arch-names.js";
import { addonCompileFlags, cross, CROSS_READELF, crossGate, gypSources, GYP_ARCH } from "./support/cross.js";

const nativeDir = join(packageRoot, "native");
const rel = (files: string[]) => files.map((f) => basename(f)).sort();

describe("binding.gyp's sources per architecture", () => {
  const x86 = rel(gypSources(GYP_ARCH.x86_64));
  const arm64 = rel(gypSources(GYP_ARCH.arm64));
  const shared = x86.filter((f) => arm64.includes(f));

  it("compiles every native source for some architecture, and the x86-/arm64- files for theirs only", () => {
    const all = readdirSync(nativeDir).filter((f) => f.endsWith(".cc")).sort();
    expect([...new Set([...x86, ...arm64])].sort()).toEqual(all);
    expect(x86.filter((f) => !shared.includes(f))).toEqual(all.filter((f) => f.startsWith("x86-")));
    expect(arm64.filter((f) => !shared.includes(f))).toEqual(all.filter((f) => f.startsWith("arm64-")));
    expect(shared.length).toBeGreaterThan(0);
  });
});

describe.skipIf(!crossGate.ok)("the arm64 addon builds with aarch64-linux-gnu-g++ against this node's headers", () => {
  const out = mkdtempSync(join(tmpdir(), "kvm-native-arm64-"));
  afterAll(() => rmSync(out, { recursive: true, force: true }));
  const sources = gypSources(GYP_ARCH.arm64);
  const objects = sources.map((s) => join(out, `${basename(s, ".cc")}.o`));
  const addon = join(out, "kvm_native.node");

  it(`compiles all ${sources.length} arm64 sources with -Wall -Wextra -Werror`, { timeout: 300_000 }, async () => {
    const flags = addonCompileFlags();
    // One at a time: the project's machines have two cores, and the KVM suites beside this one time their guests.
    for (const [i, s] of sources.entries()) await cross([...flags, "-O2", "-c", s, "-o", objects[i]!]);
    expect(readdirSync(out).filter((f) => f.endsWith(".o"))).toHaveLength(sources.length);
  });

  it("links them into an AArch64 module whose only unresolved symbols are N-API's and libuv's", async () => {
    // -z defs reports every symbol nothing resolves; the toolchain's libc, libstdc++ and libgcc resolve the rest.
    const { stderr } = await cross(["-shared", "-pthread", "-o", addon, ...objects, "-Wl,-z,defs", "-Wl,--warn-unresolved-symbols"]);
    const unresolved = [...new Set([...stderr.matchAll(/undefined reference to `([^']+)'/g)].map((m) => m[1]!))];
    expect(unresolved.length).toBeGreaterThan(0);
    expect(unresolved.filter((s) => !/^(napi_|node_api_|uv_)/.test(s))).toEqual([]);
    const { stdout } = await cross(["--file-header", "--dyn-syms", "--wide", addon], CROSS_READELF);
    expect(stdout).toMatch(/Machine:\s+AArch64/);
    expect(stdout).toMatch(/FUNC\s+GLOBAL\s+DEFAULT\s+\d+\s+napi_register_module_v1/);
  });

  it("carries the names the TypeScript side calls on arm64 and none of x86's", () => {
    const bytes = readFileSync(addon);
    const has = (name: string) => bytes.includes(Buffer.from(`\0${name}\0`));
    const expected = [...SHARED.functions, ...SHARED.vcpuMethods, ...ARCH_ONLY.arm64.functions, ...ARCH_ONLY.arm64.vcpuMethods];
    expect(expected.filter((n) => !has(n))).toEqual([]);
    expect([...ARCH_ONLY.x86_64.functions, ...ARCH_ONLY.x86_64.vcpuMethods].filter(has)).toEqual([]);
  });
});
