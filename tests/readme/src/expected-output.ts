// A README output block as what a run must print: the lines as shown, in order, with long hex strings (build
// hashes, random bytes) standing for any hex string, since they differ from run to run and machine to machine.

const HEX_RUN = /[0-9a-f]{16,}/g;

/** A pattern that matches the block's lines, in order and consecutive, anywhere in a command's output. */
export function outputPattern(block: string): RegExp {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const lines = block.split("\n").map((line) =>
    line
      .split(HEX_RUN)
      .map(escape)
      .join("[0-9a-f]+"),
  );
  return new RegExp(`^${lines.join("\n")}$`, "m");
}
