// What `vmm ... --help` says a command accepts, read from the help text itself (commander's layout: an option line
// starts with its flags, a command line with its name), so the check follows the cli however it groups its help.

export interface HelpOption {
  /** "-k" and/or "--kernel". */
  readonly flags: readonly string[];
  /** Whether it takes a value (`<file>`, `[n]`). */
  readonly takesValue: boolean;
}

export interface Help {
  readonly options: readonly HelpOption[];
  /** Subcommand names (`run`, `devices`, ...), when the help lists any. */
  readonly commands: readonly string[];
}

export function parseHelp(text: string): Help {
  const options: HelpOption[] = [];
  const commands: string[] = [];
  let section = "";
  for (const line of text.split("\n")) {
    const heading = /^(\S[^:]*):\s*$/.exec(line);
    if (heading) {
      section = heading[1]!.toLowerCase();
      continue;
    }
    const option = /^\s+((?:-[A-Za-z], )?--?[A-Za-z][\w-]*)( [<[]\S*)?(?:\s|$)/.exec(line);
    if (option) {
      options.push({ flags: option[1]!.split(", "), takesValue: option[2] !== undefined });
      continue;
    }
    const command = /^\s{2}([a-z][\w-]*)(?:\s|$)/.exec(line);
    if (command && section.includes("command")) commands.push(command[1]!);
  }
  return { options, commands };
}

/** The option a flag names (`-k`, `--kernel`, `--device=x` as `--device`), if the help lists it. */
export function findOption(help: Help, flag: string): HelpOption | undefined {
  const name = flag.startsWith("--") ? flag.split("=")[0]! : flag;
  return help.options.find((o) => o.flags.includes(name));
}
