import { Command, CommanderError, Option } from "commander";
import { devicesCommand, type RawDevicesOptions } from "./commands/devices.js";
import { doctorCommand, type RawDoctorOptions } from "./commands/doctor.js";
import { runCommand } from "./commands/run.js";
import { cliVersion, versionCommand } from "./commands/version.js";
import { processContext, type CliContext } from "./context.js";
import { ExitCode, exitCodeFor, renderError, UsageError } from "./errors.js";
import { DEFAULT_ARCH, DEFAULT_CPUS, DEFAULT_MEMORY, type RawRunOptions } from "./options/run-config.js";

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Runs a command's body; commander's parseAsync awaits it, so its errors come out of parseAsync. */
type Act = (run: () => Promise<number> | number) => Promise<void>;

/**
 * The options that say what machine to assemble and which devices it has: `vmm run` and `vmm devices` (which
 * assembles the same machine without running it, to show its PCI tree) take the same ones.
 */
function machineOptions(command: Command, firmwareFlags: string, firmwareHelp: string): Command {
  return command
    .option(firmwareFlags, firmwareHelp)
    .option("-m, --mem <size>", "guest RAM: MiB, or with a unit suffix (512M, 1G)", DEFAULT_MEMORY)
    .option("-c, --cpus <n>", "number of vCPUs", DEFAULT_CPUS)
    .option("-d, --disk <path[,ro][,bootindex=N]>", "a virtio-blk disk image (repeatable); ro makes it read-only; with -f, bootindex=N puts it in the firmware's boot order (lowest first)", collect)
    .option("-n, --network <mode[,key=value...]>", "a virtio-net device: tap, socket (e.g. socket,path=/tmp/x), passt or user (user-mode networking through passt, e.g. user,forward=8080:80/tcp) or none (repeatable)", collect)
    .addOption(new Option("--console <kind>", "the guest console").choices(["serial", "virtio"]).default("serial"))
    .option("--rng", "a virtio-rng device")
    .option("--plugin <name[,key=value...]>", "load a device plugin: a package name resolved from the working directory, or a path (repeatable)", collect)
    .option("--device <type[,key=value...]>", "create a device of a type a plugin provides (repeatable; see vmm devices)", collect)
    .option("--vfio-pci <address[,key=value...]>", "pass a host PCI function bound to vfio-pci through (repeatable; same as --device vfio-pci,host=ADDRESS; see vmm doctor vfio)", collect)
    .option("--arch <arch>", "guest architecture", DEFAULT_ARCH)
    .option("--name <name>", "the VM's name (default guest-PID)");
}

function buildProgram(ctx: CliContext, act: Act): Command {
  const program = new Command("vmm")
    .description("Run virtual machines on Linux KVM; every device is a plugin package.")
    .version(cliVersion(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .addHelpCommand(false)
    .showSuggestionAfterError(true)
    // Set before the subcommands exist so that they inherit it: errors come back as CommanderError.
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.stdout(s),
      writeErr: (s) => ctx.stderr(s),
      // Errors are rendered by main() as one line; commander's own rendering is dropped.
      outputError: () => {},
    });

  const run = program
    .command("run")
    .description("boot a kernel or a guest program in a new VM")
    .option("-k, --kernel <file>", "kernel image: a bzImage, an ELF64 executable or a raw binary (loaded at 0x10000)");
  machineOptions(run, "-f, --firmware <file>", "boot firmware (e.g. SeaBIOS's bios.bin) instead of a kernel: mapped below 4 GiB, started at the reset vector")
    .option("--debugcon <file>", "write the debug console (port 0x402, firmware's log) to this file")
    .option("--reboot", "a guest reset (port 0xCF9 or the i8042) starts the VM again instead of exiting")
    .option("-i, --initrd <file>", "initial ramdisk")
    .option("-p, --params <string>", "kernel command line")
    .option("--debug", "trace exits and config accesses; show stack traces")
    .option("--stats", "when the VM stops, print the machine's exit counts and every device's counters")
    .allowExcessArguments(false)
    .action((opts: RawRunOptions) => act(() => runCommand(opts, ctx)));

  const devices = program
    .command("devices")
    .description("list every device type of the built-in and loaded plugins, with its options; given devices (as vmm run takes them), show the PCI tree they make instead");
  machineOptions(devices, "-f, --firmware <file>", "assemble the machine as for a firmware boot (needed for bootindex=); nothing runs")
    .option("--tree", "show the PCI tree even without devices (the bare machine's)")
    .option("--json", "print JSON")
    .option("--debug", "show stack traces")
    .allowExcessArguments(false)
    .action((opts: RawDevicesOptions) => act(() => devicesCommand(opts, ctx)));

  program
    .command("doctor")
    .description("say what this host lacks for a feature and how to fix it: vfio (PCI passthrough), optionally for one host function")
    .argument("<topic>", "what to check: vfio")
    .argument("[address]", "a host PCI function (DDDD:BB:DD.F, as lspci -D prints it)")
    .option("-m, --mem <size>", "guest RAM the VM will pin for DMA (checked against the memlock limit)")
    .allowExcessArguments(false)
    .action((topic: string, address: string | undefined, opts: RawDoctorOptions) => act(() => doctorCommand(topic, address, opts, ctx)));

  program
    .command("version")
    .description("print the version of vmm and its plugin API")
    .allowExcessArguments(false)
    .action(() => act(() => versionCommand(ctx)));

  return program;
}

/** Parses the arguments (without node and the script) and runs the command; resolves to the exit status. */
export async function main(argv: readonly string[], ctx: CliContext = processContext()): Promise<number> {
  const debug = argv.includes("--debug");
  let status: number = ExitCode.ok;
  const program = buildProgram(ctx, async (run) => {
    status = await run();
  });
  try {
    if (!argv.length) {
      ctx.stderr(program.helpInformation());
      return ExitCode.usage;
    }
    await program.parseAsync([...argv], { from: "user" });
    return status;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are "errors" with status 0.
      if (error.exitCode === 0) return ExitCode.ok;
      ctx.stderr(renderError(new UsageError(error.message.replace(/^error: /, "")), false) + "\n");
      return ExitCode.usage;
    }
    ctx.stderr(renderError(error, debug) + "\n");
    return exitCodeFor(error);
  }
}
