// What a README mentions in passing, and which of those mentions name nothing: `vmm` subcommands and options, the
// options it describes on their own (`-k/--kernel`), built-in device types, pnpm scripts and workspace packages.
import { readmeCommands, simpleCommands } from "./commands.js";
import { findOption, type Help } from "./help.js";
import { codeSpans } from "./markdown.js";

export interface Mention {
  readonly words: readonly string[];
  readonly line: number;
}

/** The words of every simple command in the README's commands and inline code spans. */
export function mentionsIn(markdown: string): Mention[] {
  return [
    ...readmeCommands(markdown).flatMap((c) => simpleCommands(c.text).map((words) => ({ words, line: c.line }))),
    ...codeSpans(markdown).flatMap((s) => simpleCommands(s.text).map((words) => ({ words, line: s.line }))),
  ];
}

/** A synopsis's optional parts are mentions too: `[--plugin NAME]`. */
const unbracketed = (word: string) => word.replace(/^\[+|\]+$/g, "");

/** `vmm SUB ...` mentions: the subcommands `vmm` mentions use. */
export function vmmSubcommands(mentions: readonly Mention[]): string[] {
  return [...new Set(mentions.filter((m) => m.words[0] === "vmm" && m.words.length > 1).map((m) => m.words[1]!))];
}

/** `vmm SUB --option` mentions whose subcommand or option the help (`vmm --help`, `vmm SUB --help`) lacks. */
export function unknownVmmMentions(mentions: readonly Mention[], top: Help, subHelp: ReadonlyMap<string, Help>): string[] {
  const unknown: string[] = [];
  for (const { words, line } of mentions.filter((m) => m.words[0] === "vmm" && m.words.length > 1)) {
    const sub = words[1]!;
    const help = subHelp.get(sub);
    if (!top.commands.includes(sub) || !help) {
      unknown.push(`line ${line}: vmm ${sub} (no such command)`);
      continue;
    }
    for (const word of words.slice(2).map(unbracketed).filter((w) => w.startsWith("-"))) {
      if (!findOption(help, word)) unknown.push(`line ${line}: vmm ${sub} ${word}`);
    }
  }
  return unknown;
}

/** Options described on their own (a mention that starts with one: `-k/--kernel`, `--console virtio`) that `help`
 *  lacks, or whose spellings name two different options. */
export function unknownOptionMentions(mentions: readonly Mention[], help: Help): string[] {
  const unknown: string[] = [];
  for (const { words, line } of mentions.filter((m) => m.words[0]!.startsWith("-"))) {
    const options = words[0]!.split("/").map((flag) => findOption(help, flag));
    if (options.some((o) => !o)) unknown.push(`line ${line}: ${words[0]}`);
    else if (new Set(options).size !== 1) unknown.push(`line ${line}: ${words[0]} names two different options`);
  }
  return unknown;
}

/** `--device TYPE` mentions without a `--plugin` whose TYPE is not among `types` (upper-case TYPEs are placeholders). */
export function unknownDeviceTypes(mentions: readonly Mention[], types: readonly string[]): string[] {
  const unknown: string[] = [];
  for (const { words, line } of mentions.filter((m) => !m.words.includes("--plugin"))) {
    words.forEach((word, i) => {
      const type = word === "--device" ? words[i + 1]?.split(",")[0] : undefined;
      if (type && /^[a-z]/.test(type) && !types.includes(type)) unknown.push(`line ${line}: --device ${type}`);
    });
  }
  return unknown;
}

export interface PnpmWorkspace {
  /** The root package.json's scripts. */
  readonly rootScripts: Readonly<Record<string, string>>;
  /** Each workspace package's scripts, by package name. */
  readonly packages: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /** Whether the root node_modules/.bin has this command (`pnpm turbo`). */
  readonly hasBin: (name: string) => boolean;
}

/** pnpm's own commands (not scripts) a README may use. */
const PNPM_COMMANDS = new Set(["install", "pack", "add", "exec", "run"]);

/** `pnpm ...` mentions naming a script, bin or `--filter` package the workspace does not have. */
export function unknownPnpmMentions(mentions: readonly Mention[], workspace: PnpmWorkspace): string[] {
  const unknown: string[] = [];
  for (const { words, line } of mentions.filter((m) => m.words[0] === "pnpm")) {
    let filtered: string | undefined;
    const rest: string[] = [];
    for (let i = 1; i < words.length; i++) {
      const filter = /^--filter(?:=(.*))?$/.exec(words[i]!);
      if (filter) filtered = (filter[1] ?? words[++i]!).replace(/\.\.\.$/, "");
      else if (!words[i]!.startsWith("-")) rest.push(words[i]!);
    }
    if (filtered !== undefined && !workspace.packages.has(filtered)) unknown.push(`line ${line}: --filter ${filtered} (no such package)`);
    const [command] = rest;
    if (command === undefined || PNPM_COMMANDS.has(command)) continue;
    // `pnpm --filter P script` runs P's script; otherwise a root script, or a bin (`pnpm turbo ...`).
    const scripts = filtered !== undefined && words[1]!.startsWith("--filter") ? (workspace.packages.get(filtered) ?? {}) : workspace.rootScripts;
    if (!(command in scripts) && !workspace.hasBin(command)) unknown.push(`line ${line}: pnpm ${words.slice(1).join(" ")} (no script ${command})`);
  }
  return unknown;
}

/** The directories the README's `## Layout` table lists (the code span opening each row). */
export function layoutTablePaths(markdown: string): string[] {
  const start = markdown.indexOf("\n## Layout\n");
  if (start < 0) throw new Error("the README has no ## Layout section");
  const end = markdown.indexOf("\n## ", start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
}
