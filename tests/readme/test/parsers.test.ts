/** The README readers and checks on small inputs, including the drift each check exists to catch. */
import { describe, expect, it } from "vitest";
import { aptInstallPackages, ciRunPackages } from "../src/ci-packages.js";
import { readmeCommands, simpleCommands, withoutComment } from "../src/commands.js";
import { asDevicesCommand, shellLine } from "../src/devices-dry-run.js";
import { outputPattern } from "../src/expected-output.js";
import { findOption, parseHelp } from "../src/help.js";
import { codeSpans } from "../src/markdown.js";
import { layoutTablePaths, mentionsIn, unknownDeviceTypes, unknownOptionMentions, unknownPnpmMentions, unknownVmmMentions } from "../src/mentions.js";
import { snippetImports, snippetPluginName } from "../src/readme-project.js";

const README = [
  "# title",
  "Run `vmm run -k guest.elf --rng` or `vmm screenshot`; `-k/--kernel` takes a file, `--frobnicate` does not",
  "exist, and `-k/--mem` is two options. `pnpm demo`, `pnpm frob`, `pnpm --filter @vmm/nope test`,",
  "`--device virtio-gpu` and `--device TYPE`.",
  "",
  "```sh",
  "pnpm install && pnpm demo   # builds first",
  "vmm run -k bzImage \\",
  '  -p "console=ttyS0 # not a comment" -d disk.img',
  "",
  "vmm devices [--plugin NAME] [--json]",
  "```",
  "",
  "```",
  "$ vmm run -k x.elf --name demo",
  "virtio-rng: 0123456789abcdef0123456789abcdef",
  "```",
  "",
  "```ts",
  "vmm run --not-a-command",
  "```",
].join("\n");

const RUN_HELP = `Usage: vmm run [options]

boot a kernel

Machine options:
  -k, --kernel <file>                   kernel image
  -m, --mem <size>                      guest RAM (default: "256")
  -d, --disk <path[,ro][,bootindex=N]>  a virtio-blk disk image (repeatable); ro
                                        makes it read-only
  -p, --params <string>                 kernel command line

Devices:
  --rng                                 a virtio-rng device
  --plugin <name[,key=value...]>        load a device plugin
  --device <type[,key=value...]>        create a device
  --name <name>                         the VM's name
  -h, --help                            show help
`;

const TOP_HELP = `Usage: vmm [options] [command]

Options:
  -V, --version                       print the version

Commands:
  run [options]                       boot a kernel or a guest program in a new
                                      VM
  devices [options]                   list every device type
  version                             print the version
`;

describe("reading the README", () => {
  it("takes each sh line (continuations joined, comments dropped) and each $ line of output blocks, not ts code", () => {
    expect(readmeCommands(README).map((c) => [c.line, c.from, c.text])).toEqual([
      [7, "sh", "pnpm install && pnpm demo"],
      [8, "sh", 'vmm run -k bzImage -p "console=ttyS0 # not a comment" -d disk.img'],
      [11, "sh", "vmm devices [--plugin NAME] [--json]"],
      [15, "output", "vmm run -k x.elf --name demo"],
    ]);
  });

  it("finds inline code spans outside fences, also when one wraps a line", () => {
    const spans = codeSpans("a `b\nc` d\n\n```sh\n`not a span`\n```\n`e`");
    expect(spans).toEqual([
      { text: "b c", line: 1 },
      { text: "e", line: 7 },
    ]);
  });

  it("splits command lines into simple commands and words as bash would", () => {
    expect(simpleCommands('a -p "x y" && b $(uname -r)/z; c | d')).toEqual([["a", "-p", "x y"], ["b", "$(uname -r)/z"], ["c"], ["d"]]);
    expect(withoutComment("make # comment")).toBe("make");
    expect(withoutComment("echo a#b")).toBe("echo a#b");
  });

  it("reads options, their values and subcommands from commander's help, however it groups them", () => {
    const run = parseHelp(RUN_HELP);
    expect(findOption(run, "-d")).toEqual({ flags: ["-d", "--disk"], takesValue: true });
    expect(findOption(run, "--rng")).toEqual({ flags: ["--rng"], takesValue: false });
    expect(findOption(run, "--name=x")?.takesValue).toBe(true);
    expect(findOption(run, "--makes")).toBeUndefined(); // a wrapped description line is not an option
    expect(parseHelp(TOP_HELP).commands).toEqual(["run", "devices", "version"]);
  });

  it("reads the plugin name and imports of a snippet", () => {
    const code = 'import { a } from "@vmm/core";\nimport { b } from "@vmm/pci";\nexport default definePlugin({\n  name: "@x/y",\n});';
    expect(snippetPluginName(code)).toBe("@x/y");
    expect(snippetImports(code)).toEqual(["@vmm/core", "@vmm/pci"]);
    expect(() => snippetPluginName("export const x = 1;")).toThrow(/declares no plugin name/);
  });
});

describe("checks", () => {
  it("an output block matches a run whose hashes and random bytes differ, and nothing else", () => {
    const pattern = outputPattern("$ vmm run -k cache/demo-elf-21396e3ed3dec4c9/demo.elf\nvirtio-rng: ec73acaaf625838359ca64965ed952c3");
    expect("noise\n$ vmm run -k cache/demo-elf-5bbe7006ca8aed65/demo.elf\nvirtio-rng: 7938b175f4a5cb21b68f4541a60b0d40\n").toMatch(pattern);
    expect("$ vmm run -k cache/demo-bin-5bbe7006ca8aed65/demo.elf\nvirtio-rng: 7938b175f4a5cb21b68f4541a60b0d40").not.toMatch(pattern);
    expect("$ vmm run -k cache/demo-elf-5bbe7006ca8aed65/demo.elf\nvirtio-rng: none").not.toMatch(pattern);
  });

  it("a vmm run line becomes vmm devices without the kernel's options", () => {
    const devicesHelp = parseHelp(RUN_HELP.replace(/^.*(--kernel|--params).*$/gm, ""));
    const words = simpleCommands('vmm run -k bzImage -p "console=ttyS0" -m 512M -d a.img,ro --rng')[0]!;
    expect(asDevicesCommand(words, parseHelp(RUN_HELP), devicesHelp)).toEqual(["vmm", "devices", "-m", "512M", "-d", "a.img,ro", "--rng"]);
    expect(() => asDevicesCommand(["vmm", "run", "--bogus"], parseHelp(RUN_HELP), devicesHelp)).toThrow(/no option --bogus/);
    expect(shellLine(["vmm", "run", "-p", "console=ttyS0 it's"])).toBe("vmm run -p 'console=ttyS0 it'\\''s'");
  });

  it("names each vmm subcommand, option, device type and pnpm script the README mentions that does not exist", () => {
    const mentions = mentionsIn(README);
    const run = parseHelp(RUN_HELP);
    const helps = new Map([
      ["run", run],
      ["devices", parseHelp("Options:\n  --plugin <name>  load\n  --json  print JSON\n")],
    ]);
    expect(unknownVmmMentions(mentions, parseHelp(TOP_HELP), helps)).toEqual(["line 2: vmm screenshot (no such command)"]);
    expect(unknownOptionMentions(mentions, run)).toEqual(["line 2: --frobnicate", "line 3: -k/--mem names two different options"]);
    expect(unknownDeviceTypes(mentions, ["virtio-blk"])).toEqual(["line 4: --device virtio-gpu"]);
    const workspace = { rootScripts: { demo: "x" }, packages: new Map([["@vmm/cli", { test: "vitest" }]]), hasBin: () => false };
    expect(unknownPnpmMentions(mentions, workspace)).toEqual([
      "line 3: pnpm frob (no script frob)",
      "line 3: --filter @vmm/nope (no such package)",
      "line 3: pnpm --filter @vmm/nope test (no script test)",
    ]);
  });

  it("reads the Layout table's directories", () => {
    const md = "# x\n\n## Layout\n\n| package | owns |\n|---|---|\n| `packages/a` | a, `b` |\n| `tools/c` | c |\n\n## Run\n\n| `not/layout` | x |\n";
    expect(layoutTablePaths(md)).toEqual(["packages/a", "tools/c"]);
    expect(() => layoutTablePaths("# no layout")).toThrow(/no ## Layout/);
  });

  it("reads the Debian packages of an apt-get line and of .ci/run's list", () => {
    expect(aptInstallPackages("apt-get install -y gcc make")).toEqual(["gcc", "make"]);
    expect(ciRunPackages("x=1\npackages=(gcc make\n  passt)\nfor p in")).toEqual(["gcc", "make", "passt"]);
    expect(() => ciRunPackages("nothing")).toThrow(/no packages/);
  });
});
