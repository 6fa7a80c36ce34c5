/**
 * What the root README mentions in passing must exist in the copy being tested: every `vmm` subcommand and option
 * it shows (in commands and inline code) is in `vmm ... --help`, every option it describes on its own
 * (`-k/--kernel`, `--rng`) is one of `vmm run`'s, every device type it names (`--device virtio-blk,...`) is built
 * in, every `pnpm` script and workspace package it names is there, the pnpm it installs is the repository's, and
 * its Layout table lists every workspace package.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { expect, inject, it } from "vitest";
import { parseHelp, type Help } from "../src/help.js";
import { layoutTablePaths, mentionsIn, unknownDeviceTypes, unknownOptionMentions, unknownPnpmMentions, unknownVmmMentions, vmmSubcommands } from "../src/mentions.js";
import { runShell, writeVmmShim } from "../src/shell.js";

const { dir: repository, work } = inject("freshCopy");
const readme = readFileSync(join(repository, "README.md"), "utf8");
const mentions = mentionsIn(readme);
const shimDir = writeVmmShim(join(work, "bin"), repository);

async function vmm(args: string): Promise<string> {
  const r = await runShell(`vmm ${args}`, { cwd: repository, path: [shimDir], timeoutMs: 60_000 });
  if (r.status !== 0) throw new Error(`vmm ${args} exited with ${r.status}: ${r.stderr}`);
  return r.stdout;
}

it("every vmm subcommand and option the README uses is in vmm's help", async () => {
  const top = parseHelp(await vmm("--help"));
  const subHelp = new Map<string, Help>();
  for (const sub of vmmSubcommands(mentions).filter((s) => top.commands.includes(s))) subHelp.set(sub, parseHelp(await vmm(`${sub} --help`)));
  expect(subHelp.size).toBeGreaterThanOrEqual(3); // run, devices, version at least
  expect(unknownVmmMentions(mentions, top, subHelp)).toEqual([]);
});

it("every option the README describes on its own is one of vmm run's (both spellings of -k/--kernel alike)", async () => {
  expect(mentions.filter((m) => m.words[0]!.startsWith("-")).length).toBeGreaterThan(5);
  expect(unknownOptionMentions(mentions, parseHelp(await vmm("run --help")))).toEqual([]);
});

it("every device type the README names without a plugin is built in", async () => {
  const types = (JSON.parse(await vmm("devices --json")) as { type: string }[]).map((t) => t.type);
  expect(types).toContain("virtio-blk");
  expect(unknownDeviceTypes(mentions, types)).toEqual([]);
});

/** The workspace's package directories, relative to the root: pnpm-workspace.yaml's `- "dir/*"` globs expanded. */
function workspaceDirs(): string[] {
  const globs = [...readFileSync(join(repository, "pnpm-workspace.yaml"), "utf8").matchAll(/^\s+- "([^"]+)\/\*"$/gm)].map((m) => m[1]!);
  expect(globs.length).toBeGreaterThan(0);
  return globs.flatMap((parent) => readdirSync(join(repository, parent)).map((d) => `${parent}/${d}`)).filter((d) => existsSync(join(repository, d, "package.json")));
}

it("the Layout table lists every workspace package, and nothing else", () => {
  expect(layoutTablePaths(readme).sort()).toEqual(workspaceDirs().sort());
});

it("every pnpm script, bin and workspace package the README names exists", () => {
  const packages = new Map<string, Record<string, string>>();
  for (const dir of workspaceDirs()) {
    const pkg = JSON.parse(readFileSync(join(repository, dir, "package.json"), "utf8")) as { name: string; scripts?: Record<string, string> };
    packages.set(pkg.name, pkg.scripts ?? {});
  }
  const root = JSON.parse(readFileSync(join(repository, "package.json"), "utf8")) as { scripts: Record<string, string> };
  const hasBin = (name: string) => existsSync(join(repository, "node_modules", ".bin", name));
  expect(unknownPnpmMentions(mentions, { rootScripts: root.scripts, packages, hasBin })).toEqual([]);
});

it("the pnpm the README installs is the repository's packageManager and the one CI installs", () => {
  const { packageManager } = JSON.parse(readFileSync(join(repository, "package.json"), "utf8")) as { packageManager: string };
  const ci = /^PNPM_VERSION=(\S+)$/m.exec(readFileSync(join(repository, ".ci/run"), "utf8"))?.[1];
  const installs = mentions.filter((m) => m.words.slice(0, 3).join(" ") === "npm install -g" && m.words[3]?.startsWith("pnpm@"));
  expect(installs.length).toBeGreaterThan(0);
  for (const { words } of installs) expect([words[3], words[3]]).toEqual([packageManager, `pnpm@${ci}`]);
});
