import { closeSync } from "node:fs";
import { native, type NativePoll } from "./native.js";

/**
 * A non-blocking, close-on-exec eventfd (KVM's irqfd and ioeventfd take it, or its `fd`). `onSignal` watches it
 * with a uv_poll on the main loop: each time it becomes readable the counter is read (and reset) and passed to the
 * callback.
 */
export class EventFd {
  readonly fd: number;
  private poll: NativePoll | undefined;
  private closed = false;

  constructor() {
    this.fd = native().eventfdCreate();
  }

  /** Replaces any previous callback. The watch keeps the event loop alive unless `unref()` is called. */
  onSignal(cb: (count: bigint) => void): void {
    this.assertOpen();
    this.poll?.close();
    this.poll = new (native().EventFdPoll)(this.fd, cb);
  }

  /** Stops watching (the fd stays open). */
  offSignal(): void {
    this.poll?.close();
    this.poll = undefined;
  }

  unref(): void {
    this.poll?.unref();
  }

  ref(): void {
    this.poll?.ref();
  }

  /** Adds `value` (default 1) to the counter. */
  write(value: number | bigint = 1): void {
    this.assertOpen();
    native().eventfdWrite(this.fd, value);
  }

  /** Reads and resets the counter; null when it is zero. */
  read(): bigint | null {
    this.assertOpen();
    return native().eventfdRead(this.fd);
  }

  close(): void {
    if (this.closed) return;
    this.offSignal();
    closeSync(this.fd);
    this.closed = true;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("EventFd is closed");
  }
}
