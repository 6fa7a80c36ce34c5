/** `vmm run --help` and `vmm devices --help` grouped like kvmtool's `lkvm run --help`. */
import type { Command, Option } from "commander";
import { describe, expect, it } from "vitest";
import type { CliContext } from "../src/context.js";
import { buildProgram, main } from "../src/main.js";
import { COMMANDS, HELP_GROUPS } from "../src/options/command-line.js";

/** `vmm ARGS` in-process; what it printed on stdout. */
async function stdoutOf(args: string[]): Promise<string> {
  const out: string[] = [];
  const ctx: CliContext = { cwd: process.cwd(), stdout: (t) => out.push(t), stderr: (t) => out.push(t) };
  expect(await main(args, ctx)).toBe(0);
  return out.join("");
}

/** The help text's option groups: heading → the options' flags as help shows them ("-k, --kernel <file>"). */
function groups(help: string): Map<string, string[]> {
  const result = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of help.split("\n")) {
    const heading = /^(\w[\w ]*):$/.exec(line);
    if (heading) {
      current = [];
      result.set(heading[1]!, current);
      continue;
    }
    const item = /^ {2}(-\S.*?)(?: {2,}|$)/.exec(line);
    if (item && current) current.push(item[1]!);
  }
  // Not option groups.
  result.delete("Arguments");
  result.delete("Commands");
  return result;
}

/** Every option a commander command parses, and its help option. */
function commanderOptions(command: Command): Option[] {
  const help = (command as unknown as { _getHelpOption(): Option | null })._getHelpOption();
  return [...command.options, ...(help ? [help] : [])];
}

const program = buildProgram({ cwd: process.cwd(), stdout: () => {}, stderr: () => {} }, async () => {});

describe("vmm run --help", () => {
  it("lists the options in kvmtool's groups, in its order", async () => {
    const help = groups(await stdoutOf(["run", "--help"]));
    expect([...help.keys()]).toEqual(["Basic options", "Kernel options", "Networking options", "Device options", "arm64 options", "Debug options"]);
    expect(Object.fromEntries(help)).toEqual({
      "Basic options": ["--name <name>", "-c, --cpus <n>", "-m, --mem <size>", "-d, --disk <path[,ro][,bootindex=N]>", "--rng", "--console <kind>", "--arch <arch>", "--reboot", "--vcpu-threads", "--no-vcpu-threads", "--restore <dir>", "--restore-memory <mode>", "-h, --help"],
      "Kernel options": ["-k, --kernel <file>", "-i, --initrd <file>", "-p, --params <string>", "-f, --firmware <file>"],
      "Networking options": ["-n, --network <mode[,key=value...]>"],
      "Device options": ["--plugin <name[,key=value...]>", "--device <type[,key=value...]>", "--vfio-pci <address[,key=value...]>"],
      "arm64 options": ["--mem-base <address>", "--irqchip <type>", "--dump-dtb <file>"],
      "Debug options": ["--verbose", "--idle-notice <seconds>", "--stats", "--debugcon <file>", "--debug"],
    });
  });
});

describe("vmm devices --help", () => {
  it("groups the options it shares with vmm run as vmm run does, its own under Output options", async () => {
    const help = groups(await stdoutOf(["devices", "--help"]));
    const run = groups(await stdoutOf(["run", "--help"]));
    expect([...help.keys()]).toEqual(["Basic options", "Kernel options", "Networking options", "Device options", "Output options", "Debug options"]);
    expect(help.get("Output options")).toEqual(["--tree", "--json"]);
    for (const [group, options] of help) {
      for (const option of options) {
        const inRun = [...run].find(([, o]) => o.includes(option))?.[0];
        if (inRun) expect(`${option}: ${group}`).toBe(`${option}: ${inRun}`);
      }
    }
    expect(help.get("Kernel options")).toEqual(["-f, --firmware <file>"]);
  });
});

describe("every option of the commander program is listed in exactly one group", () => {
  it.each(program.commands.map((c) => [c.name(), c] as const))("vmm %s --help", async (name, command) => {
    const help = groups(await stdoutOf([name, "--help"]));
    const listed = [...help.values()].flat();
    for (const option of commanderOptions(command)) {
      expect(listed.filter((flags) => flags === option.flags), `${name} ${option.flags}`).toHaveLength(1);
    }
    expect(listed).toHaveLength(commanderOptions(command).length);
    for (const heading of help.keys()) expect(HELP_GROUPS as readonly string[]).toContain(heading);
  });

  it("vmm --help", async () => {
    const help = groups(await stdoutOf(["--help"]));
    expect(Object.fromEntries(help)).toEqual({ "Basic options": ["-V, --version", "-h, --help"] });
    expect(commanderOptions(program).map((o) => o.flags)).toEqual(["-V, --version", "-h, --help"]);
  });

  it("the program's commands are the table's", () => {
    expect(program.commands.map((c) => c.name())).toEqual(COMMANDS.map((c) => c.name));
    expect(program.commands.map((c) => c.name())).toEqual(["run", "devices", "list", "pause", "resume", "stop", "stat", "debug", "screenshot", "snapshot", "doctor", "completion", "version"]);
  });
});
