/**
 * Serial output for a stream (stdout, a pipe): bytes are collected and written a line at a time, the rest of a
 * line when the event loop next turns. A guest writes its console a byte per exit; a write (and a wake-up of the
 * reader) per byte made the host busy enough that guest timer reads right after console output came back late.
 */
export class LineBuffer {
  private readonly pending: number[] = [];
  private scheduled = false;

  constructor(
    private readonly write: (bytes: Uint8Array) => void,
    private readonly maxLine = 4096,
  ) {}

  readonly push = (bytes: Uint8Array): void => {
    for (const b of bytes) {
      this.pending.push(b);
      if (b === 0x0a || this.pending.length >= this.maxLine) this.flush();
    }
    if (this.pending.length > 0 && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  };

  /** Writes whatever is pending now. */
  readonly flush = (): void => {
    if (this.pending.length === 0) return;
    this.write(Uint8Array.from(this.pending));
    this.pending.length = 0;
  };
}
