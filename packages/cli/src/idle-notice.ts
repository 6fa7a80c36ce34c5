/** Seconds of console silence before the first "still running" notice (`--idle-notice`'s default on a terminal). */
export const DEFAULT_IDLE_NOTICE = 10;

/**
 * The notice's interval in seconds (0: off): `--idle-notice` as given, else the default when stderr is a terminal
 * (someone watches it) and off otherwise (scripts and tests that read stderr get no new lines from a quiet guest).
 */
export function idleNoticeSeconds(option: number | undefined, stderrIsTerminal: boolean): number {
  return option ?? (stderrIsTerminal ? DEFAULT_IDLE_NOTICE : 0);
}

/**
 * Tells a silent guest apart from a hung vmm: once the guest has written nothing to the console for `intervalMs`,
 * `notify` is called with that silence, and again each time the silence has doubled (10 s, 20 s, 40 s, ...), so a
 * guest that stays quiet for an hour gets a handful of notices rather than hundreds. Any output starts over.
 *
 * `output()` runs on every console write, so it only notes the time; the timer looks at it when it fires.
 */
export class IdleNotice {
  private lastOutput: number;
  /** Notices since the last output: the next one is due after intervalMs * 2^notices of silence. */
  private notices = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly notify: (silentMs: number) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.lastOutput = now();
    this.arm(intervalMs);
  }

  /** The guest wrote to the console. */
  readonly output = (): void => {
    this.lastOutput = this.now();
    if (this.notices === 0) return; // the timer fires within an interval and looks at lastOutput then
    // Backed off: the next notice is an interval away again, not 2^notices intervals.
    this.notices = 0;
    this.stop();
    this.arm(this.intervalMs);
  };

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(delayMs: number): void {
    // Beyond setTimeout's 32-bit limit the timer fires early and finds nothing due yet.
    this.timer = setTimeout(this.check, Math.min(Math.max(0, delayMs), 2 ** 31 - 1));
    // The VM keeps the process alive, not this timer.
    this.timer.unref?.();
  }

  private readonly check = (): void => {
    const now = this.now();
    const due = this.intervalMs * 2 ** this.notices;
    if (now - this.lastOutput >= due) {
      this.notify(due);
      this.notices++;
    }
    this.arm(this.lastOutput + this.intervalMs * 2 ** this.notices - now);
  };
}

/** The notice's text: `guest NAME still running, no output for 10 s (Ctrl-C or SIGTERM stops it)`. */
export function idleNoticeText(name: string, silentMs: number): string {
  return `guest ${name} still running, no output for ${Number((silentMs / 1000).toFixed(3))} s (Ctrl-C or SIGTERM stops it)`;
}

/**
 * Calls `onWrite` before every write to `stream` (the guest's console output reaches vmm's stdout through it: COM1
 * and the virtio console's stdio backend). Returns the function that removes the tap again.
 */
export function tapWrites(stream: { write: (...args: never[]) => boolean }, onWrite: () => void): () => void {
  const original = stream.write;
  const tapped = function (this: unknown, ...args: never[]): boolean {
    onWrite();
    return original.apply(this, args);
  };
  stream.write = tapped;
  return () => {
    if (stream.write === tapped) stream.write = original;
  };
}
