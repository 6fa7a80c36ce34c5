// Ethernet frames over an fd whose every read is one frame (a tap, a unix datagram socket): the JS thread's
// reading, READ_BATCH frames per readiness callback and paused for back-pressure, and the loss warnings the
// backends and the data-plane workers share.
import type { Logger } from "@vmm/core";
import { type FdWatch, readMessage, watchReadable } from "@vmm/host-io";
import { MAX_FRAME } from "./net-socket.js";

/** Frames read per readiness callback, so one busy source cannot hold the event loop (vCPUs, timers). */
const READ_BATCH = 64;

/** Logs the first loss of a kind and every thousandth after; `count` is the total so far. */
export function warnSometimes(logger: Logger | undefined, count: number | bigint, message: string): void {
  const n = BigInt(count);
  if (n === 1n || n % 1000n === 0n) logger?.warn(`${message} (${count} so far)`);
}

export interface FrameReaderOptions {
  readonly logger?: Logger;
  /** Prefix for messages (the device and the backend). */
  readonly label: string;
  /** A read error the kernel reports once and that is no reason to stop (a datagram peer that went away). */
  readonly transient?: (error: unknown) => boolean;
  /** Appended to the warning about a frame over MAX_FRAME: what an operator can do about it. */
  readonly oversizedHint?: string;
}

/**
 * Reads frames from a non-blocking message fd while it is readable and not paused (`pause` leaves them queued in
 * the kernel). Frames over MAX_FRAME are dropped and counted; a read error other than a transient one stops
 * reading for good, reported once, rather than spinning on an fd that stays readable.
 */
export class FrameReader {
  rxFrames = 0;
  rxOversized = 0;
  private watch: FdWatch | undefined;
  private paused = false;
  private stopped = false;
  private readonly buffer = new Uint8Array(MAX_FRAME + 1); // one byte more than allowed reveals truncation

  constructor(
    private readonly fd: number,
    private readonly options: FrameReaderOptions,
  ) {}

  start(receive: (frame: Uint8Array) => void): void {
    if (this.stopped) return;
    this.watch = watchReadable(this.fd, () => this.readBatch(receive));
    if (this.paused) this.watch.pause();
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.watch?.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.watch?.resume();
  }

  /** Stops watching for good (before the fd is closed). */
  close(): void {
    this.stopped = true;
    this.watch?.close();
    this.watch = undefined;
  }

  private readBatch(receive: (frame: Uint8Array) => void): void {
    const { logger, label } = this.options;
    for (let i = 0; i < READ_BATCH && !this.paused && !this.stopped; i++) {
      let n: number;
      try {
        n = readMessage(this.fd, this.buffer);
      } catch (e) {
        if (this.options.transient?.(e)) continue;
        logger?.error(`${label}: read failed (${(e as Error).message}); receiving stopped`);
        this.close();
        return;
      }
      if (n < 0) return; // nothing more queued
      if (n === 0) continue;
      if (n > MAX_FRAME) {
        warnSometimes(logger, ++this.rxOversized, `${label}: dropped a frame over ${MAX_FRAME} bytes${this.options.oversizedHint ?? ""}`);
        continue;
      }
      this.rxFrames++;
      receive(this.buffer.slice(0, n));
    }
  }
}
