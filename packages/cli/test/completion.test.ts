/**
 * `vmm completion bash|zsh`: the scripts come from the real process (the built-in plugins' device types), the bash
 * one is run by bash (COMP_WORDS/COMP_CWORD set, the completion function called, COMPREPLY read), the zsh one is
 * checked by `zsh -n`.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { hostToolAvailable } from "@vmm/test-support";
import { beforeAll, describe, expect, it } from "vitest";
import { buildProgram } from "../src/main.js";
import { vmm } from "./helpers/spawn.js";

const HAVE_BASH = hostToolAvailable("bash");
const HAVE_ZSH = hostToolAvailable("zsh");
const banner = (text: string) => console.warn(`\n${"!".repeat(78)}\n!! @vmm/cli: ${text}\n${"!".repeat(78)}\n`);
if (!HAVE_BASH) banner("bash completion tests SKIPPED: bash is missing");
if (!HAVE_ZSH) banner("zsh completion script check SKIPPED: zsh is missing (apt-get install zsh); only bash's script was run");

const tmp = mkdtempSync(path.join(tmpdir(), "vmm-completion-"));
const files = path.join(tmp, "files");
mkdirSync(files);
for (const f of ["guest.elf", "guide.txt", "other.img"]) writeFileSync(path.join(files, f), "");
mkdirSync(path.join(files, "guests"));

let bashFile = "";

/**
 * What bash's completion offers with the cursor at the end of the last word: `words` are COMP_WORDS as bash splits
 * the line (`--console=v` is `--console`, `=`, `v`), starting with `vmm`.
 */
function complete(...words: string[]): string[] {
  const snippet = 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _vmm; printf "%s\\n" "${COMPREPLY[@]}"';
  const r = spawnSync("bash", ["--norc", "--noprofile", "-c", snippet, "bash", bashFile, ...words], { cwd: files, encoding: "utf8" });
  expect(r.stderr).toBe("");
  expect(r.status).toBe(0);
  return r.stdout.split("\n").filter(Boolean).sort();
}

/** Every option name (short and long) of a command of the commander program, and its help option's. */
function optionNamesOf(command: string): string[] {
  const program = buildProgram({ cwd: tmp, stdout: () => {}, stderr: () => {} }, async () => {});
  const c = program.commands.find((x) => x.name() === command)!;
  const help = (c as unknown as { _getHelpOption(): { short?: string; long?: string } })._getHelpOption();
  return [...c.options, help].flatMap((o) => [o.short, o.long]).filter((n): n is string => n !== undefined).sort();
}

describe("vmm completion", () => {
  it("refuses a shell it has no script for", () => {
    const r = vmm(["completion", "fish"]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe("vmm: error: completion: unknown shell 'fish' (known: bash, zsh)\n");
  });
});

describe.skipIf(!HAVE_BASH)("vmm completion bash, run by bash", () => {
  let deviceTypes: string[] = [];
  beforeAll(() => {
    const r = vmm(["completion", "bash"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^# bash completion for vmm \d+\.\d+\.\d+/);
    bashFile = path.join(tmp, "vmm.bash");
    writeFileSync(bashFile, r.stdout);
    // The types `vmm devices --json` lists, the cli's own pcie-root-port among them.
    const list = vmm(["devices", "--json"]);
    deviceTypes = (JSON.parse(list.stdout) as Array<{ type: string }>).map((t) => t.type).sort();
  });

  it("is valid bash and registers _vmm for vmm", () => {
    const r = spawnSync("bash", ["--norc", "--noprofile", "-c", 'source "$1"; complete -p vmm', "bash", bashFile], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("complete -F _vmm vmm\n");
  });

  it("completes a control command's VM name from the control sockets (sockets only), $XDG_RUNTIME_DIR/vmm", async () => {
    const dir = path.join(process.env.XDG_RUNTIME_DIR!, "vmm");
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(path.join(dir, "not-a-vm.sock"), "");
    const servers = ["web", "worker", "db"].map((name) => createServer().listen(path.join(dir, `${name}.sock`)));
    await Promise.all(servers.map((s) => new Promise((resolve) => s.once("listening", resolve))));
    try {
      for (const command of ["pause", "resume", "stop", "stat", "debug", "screenshot", "snapshot"]) expect(complete("vmm", command, "")).toEqual(["db", "web", "worker"]);
      expect(complete("vmm", "stop", "w")).toEqual(["web", "worker"]);
      expect(complete("vmm", "stop", "--timeout", "5", "d")).toEqual(["db"]);
    } finally {
      for (const s of servers) s.close();
    }
  });

  it("completes the subcommands, and the program's options after -", () => {
    expect(complete("vmm", "")).toEqual(["completion", "debug", "devices", "doctor", "list", "pause", "resume", "run", "screenshot", "snapshot", "stat", "stop", "version"]);
    expect(complete("vmm", "d")).toEqual(["debug", "devices", "doctor"]);
    expect(complete("vmm", "st")).toEqual(["stat", "stop"]);
    expect(complete("vmm", "-")).toEqual(["--help", "--version", "-V", "-h"]);
  });

  it.each(["run", "devices", "list", "pause", "resume", "stop", "stat", "debug", "screenshot", "snapshot", "doctor", "completion", "version"])("offers every option of vmm %s (the commander program's) after -", (command) => {
    expect(complete("vmm", command, "-")).toEqual(optionNamesOf(command));
  });

  it("completes option names from a prefix, also after other options and their values", () => {
    expect(complete("vmm", "run", "--con")).toEqual(["--console"]);
    expect(complete("vmm", "run", "-m", "512M", "--rng", "--de")).toEqual(["--debug", "--debugcon", "--device"]);
    expect(complete("vmm", "devices", "--t")).toEqual(["--tree"]);
  });

  it("completes file names for the options that take files", () => {
    for (const option of ["-k", "--kernel", "-i", "-f", "--firmware", "-d", "--disk", "--debugcon", "--plugin"]) {
      expect(complete("vmm", "run", option, "gu"), option).toEqual(["guest.elf", "guests", "guide.txt"]);
    }
    expect(complete("vmm", "run", "--kernel", "=", "o")).toEqual(["other.img"]);
    expect(complete("vmm", "devices", "-f", "oth")).toEqual(["other.img"]);
  });

  it("completes --console's choices and --arch's architectures, also as --option=value", () => {
    expect(complete("vmm", "run", "--console", "")).toEqual(["serial", "virtio"]);
    expect(complete("vmm", "run", "--console", "=", "v")).toEqual(["virtio"]);
    expect(complete("vmm", "run", "--console", "=")).toEqual(["serial", "virtio"]);
    expect(complete("vmm", "run", "--arch", "")).toEqual(["arm64", "x86_64"]);
  });

  it("completes --device with the built-in device types (vmm devices --json), then each type's options", () => {
    expect(complete("vmm", "run", "--device", "")).toEqual(deviceTypes);
    expect(deviceTypes).toEqual(expect.arrayContaining(["pcie-root-port", "virtio-blk", "virtio-net", "virtio-rng", "vfio-pci"]));
    expect(complete("vmm", "run", "--device", "virtio-r")).toEqual(["virtio-rng"]);
    expect(complete("vmm", "run", "--device", "virtio-blk,p")).toEqual(["virtio-blk,path=", "virtio-blk,placement=", "virtio-blk,poll="]);
    expect(complete("vmm", "run", "--device", "virtio-net,mode", "=", "socket,pa")).toEqual(["socket,path="]);
    expect(complete("vmm", "run", "--device", "=", "virtio-r")).toEqual(["virtio-rng"]);
    expect(complete("vmm", "run", "--device", "virtio-blk,path", "=", "gu")).toEqual(["guest.elf", "guests", "guide.txt"]);
    expect(complete("vmm", "devices", "--device", "pcie-root-port,mem-reserve", "=", "8M,i")).toEqual(expect.arrayContaining(["8M,id=", "8M,io-reserve="]));
    expect(complete("vmm", "run", "--device", "no-such-type,")).toEqual([]);
  });

  it("completes -n with the network modes, then virtio-net's options (less mode)", () => {
    expect(complete("vmm", "run", "-n", "")).toEqual(["dgram", "none", "passt", "socket", "tap", "user"]);
    expect(complete("vmm", "run", "-n", "dgram,")).toEqual(expect.arrayContaining(["dgram,local=", "dgram,remote="]));
    expect(complete("vmm", "run", "--network", "s")).toEqual(["socket"]);
    const after = complete("vmm", "run", "-n", "socket,");
    expect(after).toEqual(expect.arrayContaining(["socket,path=", "socket,role=", "socket,bus="]));
    expect(after).not.toContain("socket,mode=");
  });

  it("offers nothing for a free value (-m, -c, -p, --name, --idle-notice)", () => {
    for (const option of ["-m", "-c", "-p", "--name", "--idle-notice"]) expect(complete("vmm", "run", option, ""), option).toEqual([]);
  });

  it("completes doctor's topic and completion's shell as their first argument, skipping options and values", () => {
    expect(complete("vmm", "doctor", "")).toEqual(["vfio"]);
    expect(complete("vmm", "doctor", "-m", "1G", "")).toEqual(["vfio"]);
    expect(complete("vmm", "doctor", "vfio", "")).toEqual(["--help", "--mem", "-h", "-m"]);
    expect(complete("vmm", "completion", "")).toEqual(["bash", "zsh"]);
    expect(complete("vmm", "completion", "z")).toEqual(["zsh"]);
  });
});

describe.skipIf(!HAVE_ZSH)("vmm completion zsh", () => {
  it("is a #compdef vmm script that zsh -n accepts", () => {
    const r = vmm(["completion", "zsh"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^#compdef vmm\n/);
    const file = path.join(tmp, "_vmm");
    writeFileSync(file, r.stdout);
    const check = spawnSync("zsh", ["-n", file], { encoding: "utf8" });
    expect(check.stderr).toBe("");
    expect(check.status).toBe(0);
    // Generated from the same table as bash's: the device types and every command's function are there.
    for (const word of ["_vmm_run()", "_vmm_devices()", "_vmm_doctor()", "_vmm_completion()", "_vmm_version()", "virtio-blk) keys=(path", "'1:topic:(vfio)'"]) {
      expect(r.stdout).toContain(word);
    }
  });
});
