import { closeSync } from "node:fs";
import { MAX_FDS_PER_MESSAGE, recvFds, sendFds, waitReadable } from "@vmm/host-io";
import { FrameDecoder, type RawMessage } from "./protocol/framing.js";

/** The client went away (EOF, a reset, or a broken pipe). */
export class ConnectionClosed extends Error {
  override name = "ConnectionClosed";
}

/** A message channel to the client: whole messages in, whole messages out. */
export interface Transport {
  /** The next message; "timeout" when none came within `timeoutMs` (-1: wait for ever). Throws ConnectionClosed at EOF. */
  receive(timeoutMs: number): RawMessage | "timeout";
  /** Sends a whole message, with fds attached to its first byte. Throws ConnectionClosed when the client is gone. */
  send(bytes: Uint8Array, fds?: readonly number[]): void;
  close(): void;
}

const SEND_TIMEOUT_MS = 10_000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * A connected non-blocking unix stream socket, served synchronously: the server has nothing else to do while it
 * waits, and the test engine's DMA messages must finish inside the handling of one request.
 */
export class SocketTransport implements Transport {
  private readonly decoder: FrameDecoder;
  private readonly chunk = new Uint8Array(256 * 1024);
  private closed = false;

  constructor(
    readonly fd: number,
    maxMessageSize: number,
  ) {
    this.decoder = new FrameDecoder(maxMessageSize);
  }

  receive(timeoutMs: number): RawMessage | "timeout" {
    const deadline = timeoutMs < 0 ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      const message = this.decoder.next();
      if (message) return message;
      const left = deadline === Infinity ? -1 : Math.max(0, Math.ceil(deadline - Date.now()));
      if (!waitReadable(this.fd, Math.min(left, 0x7fffffff))) return "timeout";
      let received;
      try {
        received = recvFds(this.fd, this.chunk, MAX_FDS_PER_MESSAGE);
      } catch (e) {
        throw closedBy(e);
      }
      if (received === null) continue;
      if (received.bytes === 0) {
        for (const fd of received.fds) closeSync(fd);
        throw new ConnectionClosed("the client closed the connection");
      }
      this.decoder.push(this.chunk.subarray(0, received.bytes), received.fds);
    }
  }

  send(bytes: Uint8Array, fds: readonly number[] = []): void {
    let sent = 0;
    const deadline = Date.now() + SEND_TIMEOUT_MS;
    while (sent < bytes.length) {
      let n: number;
      try {
        n = sendFds(this.fd, bytes.subarray(sent), sent === 0 ? fds : []);
      } catch (e) {
        throw closedBy(e);
      }
      if (n > 0) {
        sent += n;
        continue;
      }
      // The socket buffer is full: the client reads slowly. Nothing else can happen meanwhile, so sleep a little.
      if (Date.now() > deadline) throw new ConnectionClosed(`the client has not read for ${SEND_TIMEOUT_MS} ms`);
      Atomics.wait(sleeper, 0, 0, 1);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const fd of this.decoder.takeUnclaimedFds()) closeSync(fd);
    closeSync(this.fd);
  }
}

function closedBy(e: unknown): Error {
  const code = (e as { errno?: string }).errno;
  if (code === "EPIPE" || code === "ECONNRESET" || code === "ENOTCONN") return new ConnectionClosed(`the connection broke (${code})`);
  return e as Error;
}
