// Progress of a long `make`: it counts the objects make reports compiling and, every interval (a timer, so the
// silent final link is reported too), prints one line: how many of the expected objects, the time so far and,
// once a tenth is done, an estimate of the time left from the rate so far.

export type Say = (line: string) => void;

export interface BuildProgressOptions {
  /** Objects a complete build compiles, for "N of about M"; undefined when unknown (an incremental build). */
  readonly expectedObjects?: number;
  /** How often to report (default 30 s). */
  readonly everyMs?: number;
}

/** make's quiet output names each step and its target: `  CC      kernel/fork.o`, `  LD      vmlinux.o`. */
const STEP_LINE = /^\s+([A-Z][A-Z0-9_]*)\s+(\S+)$/;
/** The steps that compile an object (C, assembly). */
const COMPILE_STEPS = new Set(["CC", "AS"]);

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

export class BuildProgress {
  private count = 0;
  private last = "";
  private readonly started = Date.now();
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(
    private readonly say: Say,
    private readonly options: BuildProgressOptions = {},
  ) {
    this.timer = setInterval(() => this.report(), options.everyMs ?? 30_000);
    this.timer.unref();
  }

  /** One line of make's output. */
  line(text: string): void {
    const step = STEP_LINE.exec(text);
    if (!step) return;
    if (COMPILE_STEPS.has(step[1]!)) this.count++;
    this.last = `${step[1]} ${step[2]}`;
  }

  /** Objects compiled so far. */
  get compiled(): number {
    return this.count;
  }

  /** The line a report prints now. */
  status(): string {
    const elapsed = Date.now() - this.started;
    const expected = this.options.expectedObjects;
    const compiled = this.count.toLocaleString("en");
    if (expected === undefined) return `${compiled} objects compiled, ${formatDuration(elapsed)} so far${this.lastStep()}`;
    const done = Math.min(this.count / expected, 1);
    const left = done >= 0.1 && done < 1 ? `, about ${formatDuration((elapsed / done) * (1 - done))} left` : "";
    return `${compiled} of about ${expected.toLocaleString("en")} objects compiled (${Math.floor(done * 100)}%), ${formatDuration(elapsed)} so far${left}${this.lastStep()}`;
  }

  private lastStep(): string {
    return this.last ? `; last: ${this.last}` : "";
  }

  report(): void {
    this.say(this.status());
  }

  /** Stops the periodic reports. */
  stop(): void {
    clearInterval(this.timer);
  }
}
