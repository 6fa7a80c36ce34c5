/**
 * What lets a run loop pause: while closed, `wait()` gives a promise that settles when it is opened again, so a
 * paused loop awaits instead of spinning. Both machine families' run loops use it.
 */
export class PauseGate {
  private closed: { readonly wait: Promise<void>; readonly open: () => void } | undefined;

  get paused(): boolean {
    return this.closed !== undefined;
  }

  /** Closes the gate (pause); false when it already was. */
  close(): boolean {
    if (this.closed) return false;
    let open!: () => void;
    const wait = new Promise<void>((resolve) => (open = resolve));
    this.closed = { wait, open };
    return true;
  }

  /** Opens the gate (resume) and lets the waiting loop go on; false when it was open. */
  open(): boolean {
    const closed = this.closed;
    if (!closed) return false;
    this.closed = undefined;
    closed.open();
    return true;
  }

  /** Settles when the gate is open: at once when it is, else when open() is called. */
  wait(): Promise<void> {
    return this.closed?.wait ?? Promise.resolve();
  }
}
