import { bashScript } from "../completion/bash.js";
import { completionWords } from "../completion/words.js";
import { zshScript } from "../completion/zsh.js";
import type { CliContext } from "../context.js";
import { UsageError } from "../errors.js";
import { COMMANDS, COMPLETION_SHELLS, HELP_OPTION, VERSION_OPTION, type CompletionShell } from "../options/command-line.js";
import { cliVersion } from "./version.js";

const SCRIPTS: Readonly<Record<CompletionShell, typeof bashScript>> = { bash: bashScript, zsh: zshScript };

/** `vmm completion SHELL`: prints the shell's completion script, generated from the command-line table. */
export async function completionCommand(shell: string, ctx: CliContext): Promise<number> {
  if (!(COMPLETION_SHELLS as readonly string[]).includes(shell)) {
    throw new UsageError(`completion: unknown shell '${shell}' (known: ${COMPLETION_SHELLS.join(", ")})`);
  }
  const words = await completionWords(ctx);
  ctx.stdout(SCRIPTS[shell as CompletionShell](COMMANDS, [VERSION_OPTION, HELP_OPTION], words, cliVersion()));
  return 0;
}
