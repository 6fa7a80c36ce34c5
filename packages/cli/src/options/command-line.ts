import { DEFAULT_STOP_TIMEOUT_S } from "../commands/control.js";
import { DOCTOR_TOPICS } from "../commands/doctor.js";
import { DEFAULT_IDLE_NOTICE } from "../idle-notice.js";
import { DEFAULT_ARCH, DEFAULT_CPUS, DEFAULT_MEMORY, IRQCHIPS } from "./run-config.js";
import { CONSOLES } from "./sugar.js";
import { RESTORE_MEMORY } from "../snapshot/restore.js";

/**
 * The command line, declared once: every command, its arguments and options, the help group each option is listed
 * under, and what a shell completes as its value. The commander program (main.ts) and the completion scripts
 * (src/completion/) are both generated from this table.
 */

/** The groups of `vmm run --help` (kvmtool's `lkvm run --help`, in its order), and `vmm devices`' own output group. */
export const HELP_GROUPS = ["Basic options", "Kernel options", "Networking options", "Device options", "arm64 options", "Output options", "Debug options"] as const;
export type HelpGroup = (typeof HELP_GROUPS)[number];

/**
 * What a shell completes as a value: file names, fixed words, or word lists the completion generator looks up (the
 * device types and network modes of the built-in plugins, the architectures) or, when the shell completes, the names
 * of the running VMs (their control sockets). Absent: a free value, nothing to offer.
 */
export type ValueCompletion = "file" | "device-type" | "network-mode" | "architecture" | "vm-name" | { readonly words: readonly string[] };

export interface OptionDef {
  /** Commander's flags: short and long name, and `<value>` for an option that takes one. */
  readonly flags: string;
  readonly description: string;
  readonly group: HelpGroup;
  readonly default?: string;
  /** The only values commander accepts (and the shell offers). */
  readonly choices?: readonly string[];
  /** Given more than once, the values are collected in order. */
  readonly repeatable?: boolean;
  readonly complete?: ValueCompletion;
}

export interface ArgumentDef {
  /** Commander's argument: `<required>` or `[optional]`. */
  readonly name: string;
  readonly description: string;
  readonly complete?: ValueCompletion;
}

export interface CommandDef {
  readonly name: string;
  readonly description: string;
  readonly arguments: readonly ArgumentDef[];
  readonly options: readonly OptionDef[];
}

/** Each command's `-h, --help`, listed with the basic options. */
export const HELP_OPTION: OptionDef = { flags: "-h, --help", description: "show help", group: "Basic options" };
/** The program's own options (`vmm --version`); help is HELP_OPTION. */
export const VERSION_OPTION: OptionDef = { flags: "-V, --version", description: "print the version", group: "Basic options" };

const vmName: OptionDef = { flags: "--name <name>", description: "the VM's name (default guest-PID)", group: "Basic options" };
const cpus: OptionDef = { flags: "-c, --cpus <n>", description: "number of vCPUs", group: "Basic options", default: DEFAULT_CPUS };
const mem: OptionDef = { flags: "-m, --mem <size>", description: "guest RAM: MiB, or with a unit suffix (512M, 1G)", group: "Basic options", default: DEFAULT_MEMORY };
const disk: OptionDef = {
  flags: "-d, --disk <path[,ro][,bootindex=N]>",
  description: "a virtio-blk disk image (repeatable); ro makes it read-only; with -f, bootindex=N puts it in the firmware's boot order (lowest first)",
  group: "Basic options",
  repeatable: true,
  complete: "file",
};
const rng: OptionDef = { flags: "--rng", description: "a virtio-rng device", group: "Basic options" };
const guestConsole: OptionDef = { flags: "--console <kind>", description: "the guest console", group: "Basic options", choices: CONSOLES, default: "serial" };
const arch: OptionDef = { flags: "--arch <arch>", description: "guest architecture", group: "Basic options", default: DEFAULT_ARCH, complete: "architecture" };
const firmware: OptionDef = {
  flags: "-f, --firmware <file>",
  description: "boot firmware (e.g. SeaBIOS's bios.bin) instead of a kernel: mapped below 4 GiB, started at the reset vector",
  group: "Kernel options",
  complete: "file",
};
const network: OptionDef = {
  flags: "-n, --network <mode[,key=value...]>",
  description: "a virtio-net device: tap, socket (e.g. socket,path=/tmp/x), passt or user (user-mode networking through passt, e.g. user,forward=8080:80/tcp) or none (repeatable)",
  group: "Networking options",
  repeatable: true,
  complete: "network-mode",
};
const plugin: OptionDef = {
  flags: "--plugin <name[,key=value...]>",
  description: "load a device plugin: a package name resolved from the working directory, or a path (repeatable)",
  group: "Device options",
  repeatable: true,
  complete: "file",
};
const device: OptionDef = {
  flags: "--device <type[,key=value...]>",
  description: "create a device of a type a plugin provides (repeatable; see vmm devices)",
  group: "Device options",
  repeatable: true,
  complete: "device-type",
};
const vfioPci: OptionDef = {
  flags: "--vfio-pci <address[,key=value...]>",
  description: "pass a host PCI function bound to vfio-pci through (repeatable; same as --device vfio-pci,host=ADDRESS; see vmm doctor vfio)",
  group: "Device options",
  repeatable: true,
};

/** The options that say what machine to assemble and which devices it has: `vmm run` and `vmm devices` share them. */
const machineOptions = [vmName, cpus, mem, disk, rng, guestConsole, arch, network, plugin, device, vfioPci];

const run: CommandDef = {
  name: "run",
  description: "boot a kernel or a guest program in a new VM",
  arguments: [],
  options: [
    ...machineOptions,
    { flags: "--reboot", description: "a guest reset (port 0xCF9 or the i8042) starts the VM again instead of exiting", group: "Basic options" },
    {
      flags: "--vcpu-threads",
      description: "run each vCPU on a host thread of its own, so an SMP guest computes in parallel (x86_64; the default with more than one vCPU; an exit that needs vmm costs about 1-2 us more)",
      group: "Basic options",
    },
    {
      flags: "--no-vcpu-threads",
      description: "run every vCPU on vmm's main thread, taking turns (the default with one vCPU)",
      group: "Basic options",
    },
    { flags: "-k, --kernel <file>", description: "kernel image: a bzImage, an ELF64 executable or a raw binary (loaded at 0x10000)", group: "Kernel options", complete: "file" },
    { flags: "-i, --initrd <file>", description: "initial ramdisk", group: "Kernel options", complete: "file" },
    { flags: "-p, --params <string>", description: "kernel command line", group: "Kernel options" },
    firmware,
    { flags: "--mem-base <address>", description: "guest-physical base of RAM, 2 MiB aligned (default 0x80000000; e.g. where the default collides with a passed-through device's host window)", group: "arm64 options" },
    { flags: "--irqchip <type>", description: "the interrupt controller: gicv3-its (default), gicv3, gicv2m or gicv2 (MSIs through the ITS or the v2m frame)", group: "arm64 options", choices: IRQCHIPS },
    { flags: "--dump-dtb <file>", description: "write the generated devicetree blob to this file; where the host cannot run the guest, only write it", group: "arm64 options", complete: "file" },
    {
      flags: "--restore <dir>",
      description: "start from a snapshot (vmm snapshot) instead of a kernel: the machine and its devices are the snapshot's; only --name, --restore-memory and the debug options may be given with it",
      group: "Basic options",
      complete: "file",
    },
    {
      flags: "--restore-memory <mode>",
      description: "with --restore: eager reads guest RAM before the guest runs; lazy serves each page when the guest first touches it (userfaultfd)",
      group: "Basic options",
      choices: RESTORE_MEMORY,
    },
    { flags: "--verbose", description: "before the guest runs, print the machine and every PCI function with its address to stderr", group: "Debug options" },
    {
      flags: "--idle-notice <seconds>",
      description: `say on stderr that the guest still runs when it has written nothing to the console for this long, and again each time that silence doubles (0: never; default ${DEFAULT_IDLE_NOTICE} when stderr is a terminal, else 0)`,
      group: "Debug options",
    },
    { flags: "--stats", description: "when the VM stops, print the machine's exit counts and every device's counters", group: "Debug options" },
    { flags: "--debugcon <file>", description: "write the debug console (port 0x402, firmware's log) to this file", group: "Debug options", complete: "file" },
    { flags: "--debug", description: "trace exits and config accesses; show stack traces", group: "Debug options" },
  ],
};

const devices: CommandDef = {
  name: "devices",
  description: "list every device type of the built-in and loaded plugins, with its options; given devices (as vmm run takes them), show the PCI tree they make instead",
  arguments: [],
  options: [
    ...machineOptions,
    { ...firmware, description: "assemble the machine as for a firmware boot (needed for bootindex=); nothing runs" },
    { flags: "--tree", description: "show the PCI tree even without devices (the bare machine's)", group: "Output options" },
    { flags: "--json", description: "print JSON", group: "Output options" },
    { flags: "--debug", description: "show stack traces", group: "Debug options" },
  ],
};

const doctor: CommandDef = {
  name: "doctor",
  description: "say what this host lacks for a feature and how to fix it: vfio (PCI passthrough), optionally for one host function",
  arguments: [
    { name: "<topic>", description: `what to check: ${DOCTOR_TOPICS.join(", ")}`, complete: { words: DOCTOR_TOPICS } },
    { name: "[address]", description: "a host PCI function (DDDD:BB:DD.F, as lspci -D prints it)" },
  ],
  options: [{ flags: "-m, --mem <size>", description: "guest RAM the VM will pin for DMA (checked against the memlock limit)", group: "Basic options" }],
};

/** The shells `vmm completion` writes a script for. */
export const COMPLETION_SHELLS = ["bash", "zsh"] as const;
export type CompletionShell = (typeof COMPLETION_SHELLS)[number];

const completion: CommandDef = {
  name: "completion",
  description: `print a shell completion script: ${COMPLETION_SHELLS.join(" or ")} (e.g. source <(vmm completion bash))`,
  arguments: [{ name: "<shell>", description: COMPLETION_SHELLS.join(" or "), complete: { words: COMPLETION_SHELLS } }],
  options: [],
};

const version: CommandDef = { name: "version", description: "print the version of vmm and its plugin API", arguments: [], options: [] };

/** The running VM a control command addresses (by its --name; `vmm list` shows them). */
const vmArgument: ArgumentDef = { name: "<name>", description: "a running VM's name (see vmm list)", complete: "vm-name" };
const json: OptionDef = { flags: "--json", description: "print JSON", group: "Output options" };

const list: CommandDef = {
  name: "list",
  description: "list the running VMs (those with a live control socket): name, pid, state, uptime, memory, vCPUs, devices; removes sockets dead VMs left",
  arguments: [],
  options: [json],
};
const pause: CommandDef = { name: "pause", description: "pause a running VM: its vCPUs stop, all state kept", arguments: [vmArgument], options: [] };
const resume: CommandDef = { name: "resume", description: "resume a paused VM", arguments: [vmArgument], options: [] };
const stop: CommandDef = {
  name: "stop",
  description:
    "stop a running VM gracefully: press its ACPI power button and wait for the guest to power off (its vmm run exits 0); then stop it as SIGTERM does (exit 143), and kill it when even that has not ended it after the timeout",
  arguments: [vmArgument],
  options: [
    { flags: "--timeout <seconds>", description: `how long to wait for the guest to power off, and then for the forced stop, before killing it (default ${DEFAULT_STOP_TIMEOUT_S})`, group: "Basic options" },
    { flags: "--force", description: "skip the power button: stop the VM at once, as SIGTERM does", group: "Basic options" },
  ],
};
const stat: CommandDef = {
  name: "stat",
  description: "print a running VM's counters: the machine's exits and interrupts, and every device's (what vmm run --stats prints at the end)",
  arguments: [vmArgument],
  options: [json],
};

const debug: CommandDef = {
  name: "debug",
  description: "print a running VM's vCPU registers (general-purpose, segments, descriptor tables, control registers), like lkvm debug",
  arguments: [vmArgument],
  options: [json],
};

const snapshot: CommandDef = {
  name: "snapshot",
  description: "pause a running VM and write its snapshot (vCPUs, devices, RAM) into a new or empty directory; the VM then runs on (or stays paused), or stops with --stop; vmm run --restore starts it again",
  arguments: [vmArgument, { name: "<dir>", description: "the snapshot directory (created; or an empty one)", complete: "file" }],
  options: [{ flags: "--stop", description: "stop the VM once the snapshot is written", group: "Basic options" }],
};

const screenshot: CommandDef = {
  name: "screenshot",
  description: "write a running VM's display (its vesa device) as a PNG; the VM sends the picture and vmm screenshot writes the file",
  arguments: [vmArgument, { name: "<file>", description: "the PNG file to write (not replaced unless --force)", complete: "file" }],
  options: [{ flags: "--force", description: "replace the file if it exists", group: "Basic options" }],
};

/** Every command, in the order `vmm --help` lists them. */
export const COMMANDS: readonly CommandDef[] = [run, devices, list, pause, resume, stop, stat, debug, screenshot, snapshot, doctor, completion, version];

/** A command's options in help order: by group (HELP_GROUPS), declaration order within a group. */
export function optionsInHelpOrder(command: CommandDef): OptionDef[] {
  const rank = (o: OptionDef) => HELP_GROUPS.indexOf(o.group);
  return [...command.options].sort((a, b) => rank(a) - rank(b));
}

/** An option's names as typed: `["-k", "--kernel"]`, `["--rng"]`. */
export function optionNames(option: OptionDef): string[] {
  return option.flags.split(/[ ,|]+/).filter((word) => word.startsWith("-"));
}

/** Whether the option takes a value (`<value>` in its flags). */
export function takesValue(option: OptionDef): boolean {
  return /[<[]/.test(option.flags);
}
