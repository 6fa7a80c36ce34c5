// The two kinds of code a README shows: fenced blocks (```sh, ```ts, plain output) and inline code spans.

export interface FencedBlock {
  /** The info string after the opening fence ("sh", "ts", "" for plain output). */
  readonly lang: string;
  readonly body: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
}

export interface CodeSpan {
  readonly text: string;
  readonly line: number;
}

/** Every ``` fenced block, in order. */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    if (i === lines.length) throw new Error(`README line ${start + 1}: the fenced block is never closed`);
    blocks.push({ lang: open[1]!, body: body.join("\n"), line: start + 1 });
  }
  return blocks;
}

/** Every inline code span outside fenced blocks; a span may wrap onto the next line, as Markdown allows. */
export function codeSpans(markdown: string): CodeSpan[] {
  const spans: CodeSpan[] = [];
  const lines = markdown.split("\n");
  let inFence = false;
  // Prose paragraphs, joined so a span that wraps stays one span; fence lines end a paragraph.
  let paragraph: { text: string; line: number }[] = [];
  const flush = () => {
    const text = paragraph.map((p) => p.text).join("\n");
    const starts = paragraph.map((p, i) => paragraph.slice(0, i).reduce((n, q) => n + q.text.length + 1, 0));
    for (const m of text.matchAll(/`([^`]+)`/g)) {
      const at = m.index;
      const index = starts.findLastIndex((s) => s <= at);
      spans.push({ text: m[1]!.replace(/\s*\n\s*/g, " "), line: paragraph[index]!.line });
    }
    paragraph = [];
  };
  lines.forEach((text, i) => {
    if (/^```/.test(text)) {
      flush();
      inFence = !inFence;
    } else if (!inFence) {
      if (text.trim() === "") flush();
      else paragraph.push({ text, line: i + 1 });
    }
  });
  flush();
  return spans;
}
