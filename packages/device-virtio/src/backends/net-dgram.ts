import { closeSync, lstatSync, unlinkSync } from "node:fs";
import { ConfigurationError, type Logger } from "@vmm/core";
import { unixConnect, unixDgramBind, unixDgramConnect, writeMessage } from "@vmm/host-io";
import { errnoOf as errno, PEER_GONE } from "./errno.js";
import { FrameReader, warnSometimes } from "./frame-fd.js";
import { type FrameFd, MAX_FRAME, type NetBackend } from "./net-socket.js";

/** After the peer's queue was full (EAGAIN), when the held frame is tried again. */
const RETRY_MS = 1;

export interface DgramNetOptions {
  logger?: Logger;
  /** Prefix for messages (the device's name). */
  label?: string;
}

/**
 * Binds a datagram socket at `path`. Only a stale socket there (nobody bound to it: its VMM is gone) is removed and
 * replaced; a file, a directory, a link or a socket a live process is bound to is a ConfigurationError. The rule
 * is listenUnix's; the probe here is synchronous, as the backend opens synchronously.
 */
function bindAt(path: string, label: string): number {
  const fail = (why: string, cause?: unknown): never => {
    throw new ConfigurationError(`${label}: cannot bind ${path}: ${why}`, cause === undefined ? undefined : { cause });
  };
  try {
    return unixDgramBind(path);
  } catch (e) {
    if (errno(e) !== "EADDRINUSE") fail((e as Error).message, e);
  }
  const stats = lstatSync(path, { throwIfNoEntry: false });
  if (stats && !stats.isSocket()) fail("something other than a socket is in the way (only a stale socket is replaced); remove it or choose another path");
  if (stats) {
    // A stream connect tells them apart without a socket of our own at any path: ECONNREFUSED when nobody is
    // bound there, EPROTOTYPE when a datagram socket is, success when a listener is.
    let state: string;
    try {
      closeSync(unixConnect(path));
      state = "live";
    } catch (e) {
      state = errno(e) === "ECONNREFUSED" ? "stale" : errno(e) === "EPROTOTYPE" ? "live" : `unknown (${errno(e)})`;
    }
    if (state === "live") fail("another process is bound to this socket (is another VMM using it?)");
    if (state !== "stale") fail(`cannot tell whether the socket there is stale: ${state}`);
    unlinkSync(path); // refused: left behind by a process that died
  }
  try {
    return unixDgramBind(path);
  } catch (e) {
    return fail((e as Error).message, e);
  }
}

/**
 * Ethernet frames as unix datagrams, one frame per datagram and nothing else (the format of QEMU's
 * `-netdev dgram` with unix local and remote paths, so either end may be QEMU). The backend binds `local` and
 * sends to `remote`, where the peer is bound; two VMs name each other's paths the other way round. Until the
 * peer is bound, frames sent are dropped (counted), each send trying to connect again (one cheap syscall); once
 * connected, only the peer's datagrams are received. A full peer queue (EAGAIN) holds the frame and reports
 * `congested` until it went; `pause()` leaves received frames queued in the socket. The frame fd lets the
 * device's data-plane workers do the same straight from guest memory. Closing removes `local`.
 */
export class DgramNetBackend implements NetBackend {
  txFrames = 0;
  /** Frames dropped on the way out: no peer bound, an oversized frame, a send error. */
  txDropped = 0;
  private writable: (() => void) | undefined;
  private connected = false;
  private held: Uint8Array | undefined;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly reader: FrameReader;

  private constructor(
    private readonly fd: number,
    readonly local: string,
    readonly remote: string,
    private readonly inode: number,
    private readonly logger: Logger | undefined,
    private readonly label: string,
  ) {
    // A peer that went away is reported once by the kernel on a read; reading goes on.
    this.reader = new FrameReader(fd, { logger, label, transient: (e) => PEER_GONE.has(errno(e)) });
  }

  /** Frames delivered to the device. */
  get rxFrames(): number {
    return this.reader.rxFrames;
  }

  /** Datagrams larger than MAX_FRAME, dropped. */
  get rxOversized(): number {
    return this.reader.rxOversized;
  }

  /** Binds `local` and tries to reach `remote`. Throws ConfigurationError (a path in the way, a bad path). */
  static open(local: string, remote: string, options: DgramNetOptions = {}): DgramNetBackend {
    const label = `${options.label ? `${options.label}: ` : ""}dgram ${local}`;
    if (local === remote) throw new ConfigurationError(`${label}: local and remote must be different paths`);
    const fd = bindAt(local, label);
    const backend = new DgramNetBackend(fd, local, remote, lstatSync(local).ino, options.logger, label);
    backend.connect();
    return backend;
  }

  open(receive: (frame: Uint8Array) => void, writable?: () => void): void {
    this.writable = writable;
    this.reader.start(receive);
  }

  send(frame: Uint8Array): void {
    if (frame.length === 0 || frame.length > MAX_FRAME) {
      this.drop(`a ${frame.length}-byte frame`);
      return;
    }
    if (this.held) {
      this.drop("the peer's queue is full"); // the device checks `congested` first: only a caller that did not
      return;
    }
    this.write(frame);
  }

  congested(): boolean {
    return this.held !== undefined;
  }

  pause(): void {
    this.reader.pause();
  }

  resume(): void {
    this.reader.resume();
  }

  frameFd(): FrameFd | undefined {
    return this.closed ? undefined : { fd: this.fd, peer: this.remote };
  }

  counters(): Readonly<Record<string, number>> {
    return { backendRxOversized: this.rxOversized, backendTxDropped: this.txDropped };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retry);
    this.reader.close();
    closeSync(this.fd);
    // Only our own socket file: another process may have replaced a path we were slow to leave.
    if (lstatSync(this.local, { throwIfNoEntry: false })?.ino === this.inode) unlinkSync(this.local);
  }

  /** Sets the peer when it is bound; false (tried again at the next send) when not. */
  private connect(): boolean {
    if (this.connected) return true;
    try {
      unixDgramConnect(this.fd, this.remote);
      this.connected = true;
    } catch (e) {
      if (!PEER_GONE.has(errno(e))) this.logger?.warn(`${this.label}: cannot reach ${this.remote}: ${(e as Error).message}`);
    }
    return this.connected;
  }

  /** Sends `frame`, holding it when the peer's queue is full; false when it is held. */
  private write(frame: Uint8Array): boolean {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!this.connect()) {
        this.drop(`nothing is bound at ${this.remote} yet`);
        return true;
      }
      try {
        if (writeMessage(this.fd, frame) < 0) {
          this.hold(frame); // the peer's queue is full
          return false;
        }
        this.txFrames++;
        return true;
      } catch (e) {
        const code = errno(e);
        if (!PEER_GONE.has(code)) {
          this.drop((e as Error).message);
          return true;
        }
        this.connected = false; // the peer went away (a restarted VM binds anew): reconnect once, now
      }
    }
    this.drop(`the peer at ${this.remote} went away`);
    return true;
  }

  private hold(frame: Uint8Array): void {
    this.held = frame;
    this.retry = setTimeout(() => {
      this.held = undefined;
      if (this.closed || !this.write(frame)) return;
      this.writable?.();
    }, RETRY_MS);
  }

  private drop(why: string): void {
    warnSometimes(this.logger, ++this.txDropped, `${this.label}: dropped a transmitted frame: ${why}`);
  }
}
