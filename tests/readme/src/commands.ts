// The commands a README tells its reader to type: every line of its ```sh blocks and the `$ ` lines of its output
// blocks, each as the reader would paste it (a trailing `# comment` is not part of the command).
import { fencedBlocks, type FencedBlock } from "./markdown.js";

export interface ReadmeCommand {
  /** The command without its trailing comment. */
  readonly text: string;
  /** 1-based line in the README. */
  readonly line: number;
  /** "sh": typed by the reader; "output": shown after `$ ` in an output block (what a command printed). */
  readonly from: "sh" | "output";
  /** The fenced block it is in. */
  readonly block: FencedBlock;
}

/** The shell languages a fenced block of commands is marked with. */
const SHELL_LANGS = new Set(["sh", "bash", "shell", "console"]);

export function readmeCommands(markdown: string): ReadmeCommand[] {
  const commands: ReadmeCommand[] = [];
  for (const block of fencedBlocks(markdown)) {
    const lines = block.body.split("\n");
    if (SHELL_LANGS.has(block.lang)) {
      for (let i = 0; i < lines.length; i++) {
        let text = lines[i]!;
        const line = block.line + 1 + i;
        while (text.endsWith("\\") && i + 1 < lines.length) text = `${text.slice(0, -1).trimEnd()} ${lines[++i]!.trim()}`;
        text = withoutComment(text).trim();
        if (text !== "") commands.push({ text, line, from: "sh", block });
      }
    } else if (block.lang === "") {
      lines.forEach((text, i) => {
        if (text.startsWith("$ ")) commands.push({ text: text.slice(2).trim(), line: block.line + 1 + i, from: "output", block });
      });
    }
  }
  return commands;
}

/** The command without a `#` comment that starts a word outside quotes. */
export function withoutComment(text: string): string {
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]!))) return text.slice(0, i).trimEnd();
  }
  return text;
}

/**
 * The words of each simple command in a command line (split at `&&`, `||`, `;` and `|`), quotes removed. Enough
 * for the option check; the commands themselves run through bash.
 */
export function simpleCommands(text: string): string[][] {
  const commands: string[][] = [[]];
  let word: string | undefined;
  let quote = "";
  const end = () => {
    if (word !== undefined) commands.at(-1)!.push(word);
    word = undefined;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = "";
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word ??= "";
    } else if (c === "$" && text[i + 1] === "(") {
      // A command substitution stays inside its word: `/boot/vmlinuz-$(uname -r)`.
      const close = text.indexOf(")", i);
      if (close < 0) throw new Error(`unclosed $( in: ${text}`);
      word = (word ?? "") + text.slice(i, close + 1);
      i = close;
    } else if (/\s/.test(c)) end();
    else if (c === ";" || c === "|" || (c === "&" && text[i + 1] === "&")) {
      end();
      if (text[i + 1] === c) i++;
      commands.push([]);
    } else word = (word ?? "") + c;
  }
  end();
  return commands.filter((words) => words.length > 0);
}
