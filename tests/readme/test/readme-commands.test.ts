/**
 * Every command the root README shows (each line of its ```sh blocks and each `$ ` line of its output blocks) is
 * either run here as written, in a fresh copy of the repository (test/global-setup.ts) or in a project directory
 * beside it, or listed in COMMANDS as an exception with the reason and what is checked instead. A command the
 * table does not know fails the first test: README examples cannot drift unnoticed.
 *
 * As written means: through bash, with `vmm` on PATH as the README defines it (the copy's
 * packages/cli/bin/vmm.js), and with the files a command names where the README leaves them to the reader:
 * guest.elf and guest.bin are guests/readme-guest.c (lists the PCI bus, exercises the README's scratch device),
 * the plugins `npm install` would fetch are the README's own snippets (compiled by tsc as packages of the names
 * they declare) and the repository's example plugins, linked into the project's node_modules.
 */
import { accessSync, constants, copyFileSync, existsSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, inject, it, type TestContext } from "vitest";
import { buildGuest } from "@vmm/guest-kit";
import { hostToolAvailable, kvmSkipBanner, kvmTestGate, startVfioUserServer, vfioUserServerMissing } from "@vmm/test-support";
import { aptInstallPackages, ciRunPackages } from "../src/ci-packages.js";
import { readmeCommands, simpleCommands, type ReadmeCommand } from "../src/commands.js";
import { asDevicesCommand, shellLine } from "../src/devices-dry-run.js";
import { outputPattern } from "../src/expected-output.js";
import { parseHelp, type Help } from "../src/help.js";
import { fencedBlocks } from "../src/markdown.js";
import { compileSnippet, makeProject, type SnippetPackage } from "../src/readme-project.js";
import { runShell, writeVmmShim, type ShellResult } from "../src/shell.js";

const PACKAGE = "@vmm/readme-tests";
const here = dirname(fileURLToPath(import.meta.url));
const { dir: repository, work } = inject("freshCopy");
const readme = readFileSync(join(repository, "README.md"), "utf8");
const commands = readmeCommands(readme);
const project = join(work, "project");
const shimDir = writeVmmShim(join(work, "bin"), repository);
const kvm = kvmTestGate(PACKAGE, { what: "README commands that run a VM" });

/** The context each check gets. */
interface Ctx {
  readonly command: ReadmeCommand;
  readonly snippets: ReadonlyMap<string, SnippetPackage>;
}

/** Run as written, in `cwd`. `requires` says why it cannot run on this host (a loud skip), or undefined. */
interface Run {
  readonly cwd: "repository" | "project";
  readonly requires?: () => string | undefined | Promise<string | undefined>;
  /** Files it names that the project directory provides empty (size in MiB). */
  readonly files?: Readonly<Record<string, number>>;
  /** Starts what it talks to; returns the stop. */
  readonly around?: () => Promise<() => Promise<void>>;
  /** Stop it once its output matches (a guest that never exits by itself). */
  readonly until?: RegExp;
  readonly timeoutMs?: number;
  readonly check: (result: ShellResult, ctx: Ctx) => void | Promise<void>;
}

/** Not run as written: why, and what is checked instead (`check`, when it is checked here). */
interface Exception {
  readonly reason: string;
  readonly instead: string;
  readonly check?: (ctx: Ctx) => void | Promise<void>;
}

type Entry = { readonly command: string | RegExp } & ({ readonly run: Run } | { readonly except: Exception });

const needsKvm = () => (kvm.ok ? undefined : kvm.reason);
const needsGuest = () => needsKvm() ?? (hostToolAvailable("gcc") ? undefined : "gcc is missing (it builds guest.elf)");

/** `vmm run` lines whose kernel the suite cannot provide: their other options go through `vmm devices`. */
function devicesDryRun(expectInTree: readonly RegExp[], files: Readonly<Record<string, number>> = {}): Exception["check"] {
  return async ({ command }) => {
    const [words] = simpleCommands(command.text);
    const dry = shellLine(asDevicesCommand(words!, await help("run"), await help("devices")));
    provideFiles(files);
    const r = await shell(dry, "project");
    expect(r.stderr, dry).toBe("");
    expect(r.status, dry).toBe(0);
    for (const line of expectInTree) expect(r.stdout, dry).toMatch(line);
  };
}

const COMMANDS: readonly Entry[] = [
  {
    command: /^apt-get install /,
    except: {
      reason: "installs Debian packages: needs root and the network, and changes the host",
      instead: "it names exactly the packages .ci/run installs on a clean CI machine, which the full suite uses",
      check: ({ command }) => {
        const ci = ciRunPackages(readFileSync(join(repository, ".ci/run"), "utf8"));
        expect([...aptInstallPackages(command.text)].sort()).toEqual([...ci].sort());
      },
    },
  },
  {
    command: "pnpm install && pnpm test",
    except: {
      reason: "runs the whole suite, this test included (it would run itself), 30 minutes and more",
      instead: ".ci/run, what CI runs on a clean machine, ends with this command (install with --frozen-lockfile)",
      check: ({ command }) => {
        const lines = readFileSync(join(repository, ".ci/run"), "utf8").split("\n");
        expect(lines.map((l) => l.replace(" --frozen-lockfile", "").trim())).toContain(command.text);
      },
    },
  },
  {
    command: "pnpm install && pnpm demo",
    run: {
      cwd: "repository",
      requires: needsGuest,
      timeoutMs: 180_000,
      check: (r, { command }) => {
        expect(r.status, r.stderr).toBe(0);
        // The output block under it shows what it prints: the vmm command it runs, then the guest's lines.
        const shown = fencedBlocks(readme).find((b) => b.line > command.line && b.lang === "");
        expect(shown, "an output block after the demo command").toBeDefined();
        expect(r.stdout).toMatch(outputPattern(shown!.body));
      },
    },
  },
  {
    command: /^vmm run -k packages\/guest-kit\/\.guest-cache\/demo-elf-[0-9a-f]+\/demo\.elf /,
    except: {
      reason:
        "the command pnpm demo prints and then runs; its cache directory is named by a hash of the build's inputs (the compiler's version and the checkout's path among them), which differs between machines",
      instead: "pnpm demo's run (above) prints this line, hash aside, and the guest output under it",
    },
  },
  {
    command: 'vmm run -k bzImage -i initrd.img -p "console=ttyS0" -m 512M -c 2 -d disk.img -d seed.iso,ro --rng',
    except: {
      reason:
        "boots the reader's own kernel, initrd and disk images; no kernel boots with just console=ttyS0 on every host the suite runs on (this project's need tests/linux's workarounds, see the Linux commands below)",
      instead: "its machine and device options through `vmm devices` (no kernel), with empty disk.img and seed.iso",
      check: devicesDryRun([/virtio-blk0/, /virtio-blk1/, /virtio-rng0/], { "disk.img": 1, "seed.iso": 1 }),
    },
  },
  {
    command: "vmm run -k guest.elf --plugin @x/device-pci-testdev --device pci-testdev,vectors=8",
    run: {
      cwd: "project",
      requires: needsGuest,
      check: (r) => {
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/^00:0\d\.0 7e57:0001$/m);
      },
    },
  },
  {
    command: "vmm run -k guest.bin -n socket,path=/tmp/vm-link --console virtio --debug",
    run: {
      cwd: "project",
      requires: needsGuest,
      check: (r) => {
        expect(r.status, r.stderr.slice(-2000)).toBe(0);
        expect(r.stdout).toMatch(/^00:0\d\.0 1af4:1041$/m); // virtio-net
        expect(r.stdout).toMatch(/^00:0\d\.0 1af4:1043$/m); // virtio-console
        expect(r.stderr).toMatch(/^vmm: debug: /m);
      },
    },
  },
  {
    command: "vmm devices [--plugin NAME] [--json]",
    except: {
      reason: "a synopsis, not a command: the brackets mark optional parts and NAME stands for a plugin",
      instead: "each of its forms runs, with the README's scratch plugin as NAME",
      check: async () => {
        for (const form of ["vmm devices", "vmm devices --json", "vmm devices --plugin @x/device-scratch", "vmm devices --plugin @x/device-scratch --json"]) {
          const r = await shell(form, "project");
          expect(r.status, `${form}: ${r.stderr}`).toBe(0);
          expect(r.stdout, form).toMatch(/virtio-blk/);
          if (form.includes("--json")) expect(() => JSON.parse(r.stdout), form).not.toThrow();
          if (form.includes("scratch")) expect(r.stdout, form).toMatch(/scratch/);
        }
      },
    },
  },
  {
    command: "vmm list [--json]",
    except: {
      reason: "a synopsis, not a command: the brackets mark an optional part",
      instead: "both of its forms run (no VM of this suite's is running, so the list is empty but for what other runs left)",
      check: async () => {
        const text = await shell("vmm list", "project");
        expect(text.status, text.stderr).toBe(0);
        expect(text.stdout).toMatch(/^NAME +PID +STATE +UPTIME +MEMORY +CPUS +DEVICES$/m);
        const json = await shell("vmm list --json", "project");
        expect(json.status, json.stderr).toBe(0);
        expect(Array.isArray(JSON.parse(json.stdout))).toBe(true);
      },
    },
  },
  {
    command: "vmm pause NAME | vmm resume NAME | vmm stat NAME | vmm debug NAME | vmm stop NAME [--timeout S] [--force]",
    except: {
      reason: "a synopsis: NAME stands for a running VM's --name, and `|` separates the commands",
      instead:
        "each command exists and, given a name no VM has, says so in one line with exit status 1 (packages/cli's control tests drive them against running VMs)",
      check: async () => {
        for (const [cmd, ...flags] of [["pause"], ["resume"], ["stat"], ["debug"], ["stop"], ["stop", "--force"]] as const) {
          const r = await shell(["vmm", cmd, "readme-no-such-vm", ...flags].join(" "), "project");
          expect(r.status, `${cmd}: ${r.stderr}`).toBe(1);
          expect(r.stderr, cmd).toMatch(/^vmm: error: no VM named 'readme-no-such-vm' \(no control socket .*\)\n$/);
        }
      },
    },
  },
  {
    command: "vmm screenshot NAME screen.png",
    except: {
      reason: "NAME stands for a running VM's --name, one with a display device",
      instead:
        "given a name no VM has, it says so in one line with exit status 1 and writes no file (packages/cli's control tests take a screenshot of a running VM's vesa device)",
      check: async () => {
        const r = await shell("vmm screenshot readme-no-such-vm readme-screen.png", "project");
        expect(r.status, r.stderr).toBe(1);
        expect(r.stderr).toMatch(/^vmm: error: no VM named 'readme-no-such-vm' \(no control socket .*\)\n$/);
        expect(existsSync(join(project, "readme-screen.png"))).toBe(false);
      },
    },
  },
  {
    command: "vmm snapshot NAME snap [--stop]",
    except: {
      reason: "a synopsis: NAME stands for a running VM's --name and [--stop] for an optional flag",
      instead:
        "given a name no VM has, it says so in one line with exit status 1 and creates no directory (packages/cli's snapshot kvm test snapshots running VMs; tests/linux snapshots Linux)",
      check: async () => {
        const r = await shell("vmm snapshot readme-no-such-vm readme-snap", "project");
        expect(r.status, r.stderr).toBe(1);
        expect(r.stderr).toMatch(/^vmm: error: no VM named 'readme-no-such-vm' \(no control socket .*\)\n$/);
        expect(existsSync(join(project, "readme-snap"))).toBe(false);
      },
    },
  },
  {
    command: "vmm run --restore snap [--restore-memory lazy]",
    except: {
      reason: "a synopsis: snap stands for a directory vmm snapshot wrote and [--restore-memory lazy] for an optional option",
      instead: "without a snapshot there, it says so in one line with exit status 1 (the snapshot kvm tests restore real snapshots, eagerly and lazily)",
      check: async () => {
        const r = await shell("vmm run --restore readme-no-snap --restore-memory lazy", "project");
        expect(r.status, r.stderr).toBe(1);
        expect(r.stderr).toBe(`vmm: error: '${join(project, "readme-no-snap")}' is not a snapshot (no snapshot.json)\n`);
      },
    },
  },
  {
    command: "vmm version",
    run: {
      cwd: "repository",
      check: (r) => {
        const { version } = JSON.parse(readFileSync(join(repository, "packages/cli/package.json"), "utf8")) as { version: string };
        expect(r.status).toBe(0);
        expect(r.stdout).toMatch(new RegExp(`^vmm ${version.replace(/\./g, "\\.")} \\(plugin API \\d+, node [\\d.]+, \\w+\\)\\n$`));
      },
    },
  },
  {
    command: "source <(vmm completion bash)",
    run: {
      cwd: "project",
      check: async (r) => {
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        // The script sourced in a shell registers vmm's completion (the line's comment installs the same script).
        const registered = await shell("source <(vmm completion bash) && complete -p vmm", "project");
        expect(registered.status, registered.stderr).toBe(0);
        expect(registered.stdout).toMatch(/^complete .* vmm$/m);
      },
    },
  },
  {
    command: 'vmm run --arch arm64 --dump-dtb vm.dtb -m 1G -c 2 -p "console=ttyS0"',
    run: {
      cwd: "project",
      check: async (r) => {
        expect(r.status, r.stderr).toBe(0);
        // This suite's hosts are x86_64: vmm writes the devicetree and says it does not start the VM.
        if (process.arch === "x64") expect(r.stderr).toMatch(/wrote the arm64 devicetree \(\d+ bytes\) to vm\.dtb; this x86_64 host does not run arm64 guests/);
        if (hostToolAvailable("dtc", ["--version"])) {
          const dts = await shell("dtc -I dtb -O dts vm.dtb", "project");
          expect(dts.stderr).toBe("");
          expect(dts.stdout).toContain('bootargs = "console=ttyS0";');
          expect(dts.stdout).toMatch(/memory@80000000 \{[^}]*reg = <0x00 0x80000000 0x00 0x40000000>;/);
        } else console.warn("SKIP reading vm.dtb back with dtc: it is missing (Debian package device-tree-compiler)");
      },
    },
  },
  {
    command: 'vmm run -k /boot/vmlinuz-$(uname -r) -i /boot/initrd.img-$(uname -r) -m 1G -p "console=ttyS0 root=/dev/vda rw" -d rootfs.img',
    run: {
      cwd: "project",
      requires: () => needsKvm() ?? stockKernelMissing(),
      files: { "rootfs.img": 64 },
      // The empty rootfs.img has no filesystem: the initramfs would wait for one forever. Finding the disk is
      // what the command line decides; stop there.
      until: /\[vda\]/,
      timeoutMs: 240_000,
      check: (r) => {
        expect(r.stopped, `${r.stdout.slice(-3000)}${r.stderr}`).toBe("until");
        expect(r.stdout).toMatch(/Linux version/);
      },
    },
  },
  {
    command: "pnpm --filter @vmm/linux-tests build && node tests/linux/bin/build-kernel.js",
    run: {
      cwd: "repository",
      requires: async () => ((await cachedTestKernel()) ? undefined : testKernelMissing()),
      check: async (r) => {
        expect(r.status, r.stderr).toBe(0);
        const printed = r.stdout.trim().split("\n").at(-1);
        expect(printed).toBe(await cachedTestKernel());
      },
    },
  },
  {
    command: "npm install @x/device-scratch",
    except: {
      reason: "@x/device-scratch is the README's example name, not a package on npm",
      instead: "the README snippet that declares it compiles with tsc (strict) as that package, installed in the project",
      check: ({ snippets }) => expect(snippets.get("@x/device-scratch")?.diagnostics).toBe(""),
    },
  },
  {
    command: "vmm devices --plugin @x/device-scratch",
    run: {
      cwd: "project",
      check: (r) => {
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(r.stdout).toContain("scratch: one 32-bit scratch register in an I/O BAR\n  from plugin @x/device-scratch\n");
        expect(r.stdout).toMatch(/^ {2}initial\s+integer 0\.\.4294967295\s+0\s+reset value$/m);
      },
    },
  },
  {
    command: "vmm run -k guest.elf --plugin @x/device-scratch --device scratch,initial=7",
    run: {
      cwd: "project",
      requires: needsGuest,
      check: (r) => {
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/^00:0\d\.0 7e57:0002\nscratch: 7\nscratch after writing 0x55aa: 0x55aa$/m);
      },
    },
  },
  {
    command: "npm install @x/quirk-msix-mirror",
    except: {
      reason: "@x/quirk-msix-mirror is the README's example name, not a package on npm",
      instead: "the README snippet that declares it compiles with tsc (strict) as that package, installed in the project",
      check: ({ snippets }) => expect(snippets.get("@x/quirk-msix-mirror")?.diagnostics).toBe(""),
    },
  },
  {
    command: "vmm devices --plugin @x/quirk-msix-mirror --device vfio-user,socket=/tmp/dev.sock",
    run: {
      cwd: "project",
      requires: () => vfioUserServerMissing(),
      // The repository's vfio-user test server, as the device at /tmp/dev.sock (it replaces a stale socket there
      // and refuses a live one).
      around: async () => {
        const server = await startVfioUserServer("rtl8168", { socket: "/tmp/dev.sock" });
        return () => server.stop();
      },
      check: (r) => {
        // The plugin loads and the tree shows the device; the test server's rtl8168 (10ec:8168) is not a
        // device the quirk matches (1234:5678), so none is applied.
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(r.stdout).toMatch(/^00:0\d\.0 vfio-user0 /m);
        expect(r.stdout).not.toContain("[quirk");
      },
    },
  },
  {
    command: "vmm run -k guest.elf --plugin @x/quirk-msix-mirror --vfio-pci 0000:01:00.0",
    except: {
      reason: "passes a host PCI function through with kernel VFIO: needs a spare device at 0000:01:00.0 bound to vfio-pci, and an IOMMU",
      instead:
        "its options are checked against vmm run --help (readme-mentions.test.ts), the plugin loads in the vmm devices line above, and examples/device-rtl8168-quirk runs a quirk plugin on a passed-through device (vfio-user) under /dev/kvm",
    },
  },
];

// --- what the entries use ---------------------------------------------------------------------------------------

const helps = new Map<string, Promise<Help>>();
function help(command: string): Promise<Help> {
  let h = helps.get(command);
  if (!h) {
    h = shell(`vmm ${command} --help`, "repository").then((r) => parseHelp(r.stdout));
    helps.set(command, h);
  }
  return h;
}

function shell(command: string, cwd: Run["cwd"], options: Pick<Run, "until" | "timeoutMs"> = {}): Promise<ShellResult> {
  return runShell(command, { cwd: cwd === "repository" ? repository : project, path: [shimDir], timeoutMs: options.timeoutMs ?? 60_000, until: options.until });
}

function provideFiles(files: Readonly<Record<string, number>>): void {
  for (const [name, mib] of Object.entries(files)) {
    writeFileSync(join(project, name), "");
    truncateSync(join(project, name), mib << 20);
  }
}

function stockKernelMissing(): string | undefined {
  const release = execFileSync("uname", ["-r"], { encoding: "utf8" }).trim();
  for (const file of [`/boot/vmlinuz-${release}`, `/boot/initrd.img-${release}`]) {
    try {
      accessSync(file, constants.R_OK);
    } catch (e) {
      return `${file} is not readable here (${(e as NodeJS.ErrnoException).code}): no stock distribution kernel to boot`;
    }
  }
  return undefined;
}

/** The test kernel's path if it is built (the copy's tests/linux finds it in the machine's cache), without building. */
async function cachedTestKernel(): Promise<string | undefined> {
  const kernel = (await import(join(repository, "tests/linux/dist/kernel.js"))) as { cachedTestKernel(): Promise<{ bzImage: string } | undefined> };
  return (await kernel.cachedTestKernel())?.bzImage;
}

function testKernelMissing(): string {
  return "the Linux test kernel is not built on this machine yet and its first build takes minutes (tests/linux builds it on its first run)";
}

function matching(command: ReadmeCommand): Entry[] {
  return COMMANDS.filter((e) => (typeof e.command === "string" ? e.command === command.text : e.command.test(command.text)));
}

// --- the project directory --------------------------------------------------------------------------------------

const snippets = new Map<string, SnippetPackage>();

beforeAll(async () => {
  for (const block of fencedBlocks(readme).filter((b) => b.lang === "ts")) {
    const compiled = compileSnippet(block.body, join(work, "snippets", `block-${block.line}`), repository);
    snippets.set(compiled.name, compiled);
  }
  const examples = new Map([["@x/device-pci-testdev", join(repository, "examples/device-pci-testdev")]]);
  makeProject(project, new Map([...[...snippets.values()].map((s) => [s.name, s.dir] as const), ...examples]));
  if (!needsGuest()) {
    const source = join(here, "../guests/readme-guest.c");
    copyFileSync(await buildGuest("readme-guest", { format: "elf", source }), join(project, "guest.elf"));
    copyFileSync(await buildGuest("readme-guest", { format: "raw", source }), join(project, "guest.bin"));
  }
});

// --- the tests ---------------------------------------------------------------------------------------------------

/** The commands COMMANDS does not handle (no entry, or more than one). */
function unhandled(all: readonly ReadmeCommand[]): string[] {
  return all.filter((c) => matching(c).length !== 1).map((c) => `README line ${c.line}: ${c.text} (${matching(c).length} entries)`);
}

it("every command in README.md is run here or listed as an exception, once", () => {
  expect(unhandled(commands), "add each to COMMANDS: a run, or an exception with its reason").toEqual([]);
});

it("a command added to README.md without an entry fails the test above", () => {
  const added = `${readme}\n\`\`\`sh\nvmm run -k guest.elf --stats\n\`\`\`\n`;
  const line = added.split("\n").indexOf("vmm run -k guest.elf --stats") + 1;
  expect(unhandled(readmeCommands(added))).toEqual([`README line ${line}: vmm run -k guest.elf --stats (0 entries)`]);
});

it("every entry of COMMANDS is a command README.md still shows", () => {
  const stale = COMMANDS.filter((e) => !commands.some((c) => matching(c).includes(e))).map((e) => String(e.command));
  expect(stale).toEqual([]);
});

it("README.md's ts snippets type-check as plugin packages", () => {
  expect(snippets.size).toBeGreaterThan(0);
  for (const s of snippets.values()) expect(s.diagnostics, s.name).toBe("");
});

// Exceptions without a check here name where they are covered: they make no test.
const tested = commands.filter((c) => matching(c).some((e) => "run" in e || e.except.check));
describe.each(tested.map((c) => [`line ${c.line}: ${c.text}`, c] as const))("README %s", (_, command) => {
  const [entry] = matching(command);
  if (entry && "run" in entry) {
    const run = entry.run;
    it("runs as written", async (t: TestContext) => {
      const missing = await run.requires?.();
      if (missing) {
        console.warn(kvmSkipBanner(PACKAGE, `README line ${command.line} (${command.text})`, missing));
        t.skip(missing);
      }
      provideFiles(run.files ?? {});
      const stop = await run.around?.();
      try {
        const r = await shell(command.text, run.cwd, run);
        console.log(`README line ${command.line}: ${r.stopped ? `stopped (${r.stopped})` : `exit ${r.status}`} after ${r.seconds} s`);
        await run.check(r, { command, snippets });
      } finally {
        await stop?.();
      }
    });
  } else if (entry && "except" in entry && entry.except.check) {
    const { reason, instead, check } = entry.except;
    it(`is not run (${reason}); checked instead: ${instead}`, async () => {
      await check({ command, snippets });
    });
  }
});
