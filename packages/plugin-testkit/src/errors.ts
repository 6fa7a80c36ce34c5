/**
 * Thrown when a plugin or a device breaks the contract: `subject` names what was checked (the plugin, the
 * device) and `problems` lists every problem found, each a sentence naming the part that is wrong.
 */
export class ConformanceError extends Error {
  override readonly name = "ConformanceError";

  constructor(
    readonly subject: string,
    readonly problems: readonly string[],
  ) {
    super(`${subject} does not conform (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}
