import { Command, CommanderError, Option } from "commander";
import { completionCommand } from "./commands/completion.js";
import { screenshotCommand } from "./commands/screenshot.js";
import { debugCommand, listCommand, snapshotCommand, statCommand, stateCommand, stopCommand } from "./commands/control.js";
import { devicesCommand, type RawDevicesOptions } from "./commands/devices.js";
import { doctorCommand, type RawDoctorOptions } from "./commands/doctor.js";
import { runCommand } from "./commands/run.js";
import { cliVersion, versionCommand } from "./commands/version.js";
import { processContext, type CliContext } from "./context.js";
import { ExitCode, exitCodeFor, renderError, UsageError } from "./errors.js";
import { COMMANDS, HELP_OPTION, optionsInHelpOrder, VERSION_OPTION, type OptionDef } from "./options/command-line.js";
import type { RawRunOptions } from "./options/run-config.js";

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Runs a command's body; commander's parseAsync awaits it, so its errors come out of parseAsync. */
export type Act = (run: () => Promise<number> | number) => Promise<void>;

/** What each command of the table (options/command-line.ts) does, given its arguments and options. */
const ACTIONS: Readonly<Record<string, (args: Array<string | undefined>, opts: object, ctx: CliContext) => Promise<number> | number>> = {
  run: (_, opts, ctx) => runCommand(opts as RawRunOptions, ctx),
  devices: (_, opts, ctx) => devicesCommand(opts as RawDevicesOptions, ctx),
  list: (_, opts, ctx) => listCommand(opts as { json?: boolean }, ctx),
  pause: ([name], _, ctx) => stateCommand("pause", name!, ctx),
  resume: ([name], _, ctx) => stateCommand("resume", name!, ctx),
  stop: ([name], opts, ctx) => stopCommand(name!, opts as { timeout?: string; force?: boolean }, ctx),
  stat: ([name], opts, ctx) => statCommand(name!, opts as { json?: boolean }, ctx),
  debug: ([name], opts, ctx) => debugCommand(name!, opts as { json?: boolean }, ctx),
  screenshot: ([name, file], opts, ctx) => screenshotCommand(name!, file!, opts as { force?: boolean }, ctx),
  snapshot: ([name, dir], opts, ctx) => snapshotCommand(name!, dir!, opts as { stop?: boolean }, ctx),
  doctor: ([topic, address], opts, ctx) => doctorCommand(topic!, address, opts as RawDoctorOptions, ctx),
  completion: ([shell], _, ctx) => completionCommand(shell!, ctx),
  version: (_, __, ctx) => versionCommand(ctx),
};

/** A commander option from its table entry, listed under its help group. */
function commanderOption(def: OptionDef): Option {
  const option = new Option(def.flags, def.description).helpGroup(`${def.group}:`);
  if (def.choices) option.choices(def.choices);
  if (def.default !== undefined) option.default(def.default);
  if (def.repeatable) option.argParser(collect);
  return option;
}

/** The commander program of the table's commands; `act` runs a command's body (main() keeps its exit status). */
export function buildProgram(ctx: CliContext, act: Act): Command {
  const program = new Command("vmm")
    .description("Run virtual machines on Linux KVM; every device is a plugin package.")
    .optionsGroup(`${VERSION_OPTION.group}:`)
    .version(cliVersion(), VERSION_OPTION.flags, VERSION_OPTION.description)
    .addHelpOption(commanderOption(HELP_OPTION))
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

  for (const def of COMMANDS) {
    const command = program.command(def.name).description(def.description).allowExcessArguments(false);
    for (const argument of def.arguments) command.argument(argument.name, argument.description);
    for (const option of optionsInHelpOrder(def)) command.addOption(commanderOption(option));
    command.addHelpOption(commanderOption(HELP_OPTION));
    const action = ACTIONS[def.name]!;
    // Commander calls the action with the arguments, then the options, then the command.
    command.action((...args: unknown[]) => act(() => action(args.slice(0, def.arguments.length) as Array<string | undefined>, args[def.arguments.length] as object, ctx)));
  }
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
