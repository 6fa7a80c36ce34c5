export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Writes to stderr with a level prefix; debug lines only when enabled. */
export class StderrLogger implements Logger {
  constructor(
    private readonly debugEnabled = false,
    private readonly write: (line: string) => void = (line) => process.stderr.write(line + "\n"),
  ) {}
  debug(message: string): void {
    if (this.debugEnabled) this.write(`vmm: debug: ${message}`);
  }
  info(message: string): void {
    this.write(`vmm: ${message}`);
  }
  warn(message: string): void {
    this.write(`vmm: warning: ${message}`);
  }
  error(message: string): void {
    this.write(`vmm: error: ${message}`);
  }
}

/** Keeps lines in memory; for tests. */
export class MemoryLogger implements Logger {
  readonly lines: string[] = [];
  debug(m: string): void {
    this.lines.push(`debug: ${m}`);
  }
  info(m: string): void {
    this.lines.push(`info: ${m}`);
  }
  warn(m: string): void {
    this.lines.push(`warn: ${m}`);
  }
  error(m: string): void {
    this.lines.push(`error: ${m}`);
  }
}
