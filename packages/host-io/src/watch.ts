import { native } from "./native.js";

/** A readiness watch on one fd (see watchReadable). */
export interface FdWatch {
  /** Stops the callbacks; the fd keeps its data (a tap's kernel queue keeps filling). */
  pause(): void;
  resume(): void;
  /** The watch keeps the event loop alive unless unref'd. */
  unref(): void;
  ref(): void;
  /** Stops watching for good; the fd stays open. Safe from inside the callback. */
  close(): void;
}

/**
 * Calls `cb` from the event loop while the non-blocking fd `fd` is readable (a uv_poll on the main loop,
 * level-triggered), without reading it: the callback reads as much as it wants. Used by Tap.onReadable; works
 * for any pollable fd (a unix socket from socketPair/unixConnect, a pipe). The fd must stay open until close().
 */
export function watchReadable(fd: number, cb: () => void): FdWatch {
  return new (native().ReadablePoll)(fd, cb);
}
