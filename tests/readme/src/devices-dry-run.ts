// A `vmm run` line whose kernel the suite cannot provide still has machine and device options worth running:
// `vmm devices` takes the same ones, assembles the machine without a kernel and prints its PCI tree.
import { findOption, type Help } from "./help.js";

/** `vmm run ...`'s words as a `vmm devices` command: options `vmm devices` lacks (-k, -i, -p) are dropped. */
export function asDevicesCommand(runWords: readonly string[], runHelp: Help, devicesHelp: Help): string[] {
  if (runWords[0] !== "vmm" || runWords[1] !== "run") throw new Error(`not a vmm run command: ${runWords.join(" ")}`);
  const kept = ["vmm", "devices"];
  for (let i = 2; i < runWords.length; i++) {
    const word = runWords[i]!;
    const option = findOption(runHelp, word);
    if (!option) throw new Error(`vmm run has no option ${word} (in: ${runWords.join(" ")})`);
    const value = option.takesValue && !word.includes("=") ? [runWords[++i]!] : [];
    if (findOption(devicesHelp, word)) kept.push(word, ...value);
  }
  return kept;
}

/** Words as one shell command line. */
export function shellLine(words: readonly string[]): string {
  return words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`)).join(" ");
}
