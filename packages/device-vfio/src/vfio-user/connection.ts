// One vfio-user socket: synchronous requests (send, then block until the reply with the same message id comes),
// the server's own commands served whenever messages are read (while a request waits, and from a readable watch
// between requests), and the loss of the server (EOF, garbage, a failed send) reported once.
import { closeSync } from "node:fs";
import { HostIoError, sendFds, waitReadable, watchReadable, type FdWatch } from "@vmm/host-io";
import { VfioBackendLostError } from "../backend/backend.js";
import { VfioUserCommandError, VfioUserProtocolError, VfioUserTimeoutError } from "./errors.js";
import { commandName, encodeMessage, VfioUserFlags } from "./protocol.js";
import { closeFds, FramingError, ReceiveBuffer, type ReceivedMessage } from "./receive-buffer.js";

/** What a command from the server gets back: a payload, or an errno for an error reply. */
export type CommandOutcome = { readonly payload: Uint8Array } | { readonly errno: number };

export interface ConnectionOptions {
  /** "vfio-user server /run/dev.sock": starts every error and loss reason. */
  readonly label: string;
  readonly timeoutMs: number;
  /** The largest message the server may send (larger ones are garbage). */
  readonly maxMessageSize: number;
  /** Serves a command from the server (DMA_READ/WRITE); its fds are closed afterwards. */
  readonly serveCommand: (message: ReceivedMessage) => CommandOutcome;
}

export interface Reply {
  readonly payload: Uint8Array;
  /** Owned by the caller. */
  readonly fds: number[];
}

export class VfioUserConnection {
  private readonly rx: ReceiveBuffer;
  private socket: number;
  private nextId = 0;
  private watch?: FdWatch;
  private lostReason?: string;
  private closed = false;
  private peerClosed = false;
  private serveScheduled = false;
  private readonly lostCallbacks: ((reason: string) => void)[] = [];

  constructor(
    socket: number,
    private readonly options: ConnectionOptions,
  ) {
    this.socket = socket;
    this.rx = new ReceiveBuffer(options.maxMessageSize);
  }

  /** Why the server is gone, once it is. */
  get lost(): string | undefined {
    return this.lostReason;
  }

  /**
   * Sends `command` and returns its reply's payload and fds (at most `maxFds` kept, the rest closed). Throws
   * VfioUserCommandError for an error reply, VfioUserTimeoutError when none comes in time, VfioBackendLostError
   * once the server is gone.
   */
  request(command: number, payload: Uint8Array, fds: readonly number[] = [], maxFds = 0): Reply {
    this.checkUsable();
    const id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xffff;
    const name = commandName(command);
    const deadline = Date.now() + this.options.timeoutMs;
    this.send(encodeMessage({ id, command, flags: VfioUserFlags.TYPE_COMMAND }, payload), fds, deadline);
    const reply = this.waitForReply(id, name, deadline);
    this.scheduleServe();
    if (reply.command !== command) {
      closeFds(reply.fds);
      throw new VfioUserProtocolError(`${this.options.label}: the reply to ${name} (message ${id}) is for ${commandName(reply.command)}`);
    }
    if ((reply.flags & VfioUserFlags.ERROR) !== 0) {
      closeFds(reply.fds);
      throw new VfioUserCommandError(this.options.label, name, reply.errorNo);
    }
    closeFds(reply.fds.splice(maxFds));
    return { payload: reply.payload, fds: reply.fds };
  }

  /** Serves the server's commands between requests and notices EOF (the watch does not keep the loop alive). */
  startWatch(): void {
    if (this.watch || this.lostReason || this.closed) return;
    this.watch = watchReadable(this.socket, () => this.onReadable());
    this.watch.unref();
  }

  onLost(callback: (reason: string) => void): void {
    if (this.lostReason !== undefined) {
      const reason = this.lostReason;
      queueMicrotask(() => callback(reason));
    } else {
      this.lostCallbacks.push(callback);
    }
  }

  /** Closes the socket; no loss is reported for it. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.shutdown();
  }

  private checkUsable(): void {
    if (this.closed) throw new Error(`${this.options.label}: the client was closed`);
    if (this.lostReason !== undefined) throw new VfioBackendLostError(this.lostReason);
  }

  private onReadable(): void {
    if (this.lostReason !== undefined || this.closed) return;
    try {
      this.readAvailable();
      this.serveBuffered();
      if (this.peerClosed) this.lose(`${this.options.label} closed the connection`);
    } catch (error) {
      // A watch callback must not throw (host-io rethrows it as uncaught): anything here means the server is gone.
      this.lose(`${this.options.label}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Reads what is queued without blocking; EOF is remembered until the buffered messages are handled. */
  private readAvailable(): void {
    for (;;) {
      const result = this.receive();
      if (result !== "data") return;
    }
  }

  private receive(): "data" | "again" | "eof" | "full" {
    if (this.peerClosed) return "eof";
    try {
      const result = this.rx.receive(this.socket);
      if (result === "eof") this.peerClosed = true;
      return result;
    } catch (error) {
      throw this.failure(error, "recvmsg");
    }
  }

  /** Handles every whole message already buffered (replies nobody waits for are dropped). */
  private serveBuffered(): void {
    if (this.lostReason !== undefined || this.closed) return;
    try {
      for (let message = this.rx.next(); message; message = this.rx.next()) this.dispatch(message);
    } catch (error) {
      if (error instanceof FramingError) this.lose(`${this.options.label} sent a malformed message: ${error.message}`);
      else throw error;
    }
  }

  /**
   * Messages that came behind the reply wait for the event loop (the readable watch does not fire for bytes already
   * read): the caller finishes with the reply first, so an unmapped region is no longer served, as the spec wants.
   */
  private scheduleServe(): void {
    if (this.serveScheduled || this.rx.buffered === 0) return;
    this.serveScheduled = true;
    setImmediate(() => {
      this.serveScheduled = false;
      this.onReadable();
    });
  }

  private waitForReply(id: number, name: string, deadline: number): ReceivedMessage {
    for (;;) {
      let message: ReceivedMessage | null;
      try {
        message = this.rx.next();
      } catch (error) {
        if (error instanceof FramingError) throw this.loseAndThrow(`${this.options.label} sent a malformed message: ${error.message}`);
        throw error;
      }
      if (message) {
        if ((message.flags & VfioUserFlags.TYPE_MASK) === VfioUserFlags.TYPE_REPLY && message.id === id) return message;
        this.dispatch(message);
        continue;
      }
      if (this.peerClosed) throw this.loseAndThrow(`${this.options.label} closed the connection`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new VfioUserTimeoutError(this.options.label, name, this.options.timeoutMs);
      if (!this.wait(remaining)) continue;
      if (this.receive() === "full") throw new Error("receive buffer full while no message is complete");
    }
  }

  private wait(ms: number): boolean {
    try {
      return waitReadable(this.socket, Math.min(Math.ceil(ms), 0x7fffffff));
    } catch (error) {
      throw this.failure(error, "poll");
    }
  }

  /** A command from the server is served; a reply nobody waits for (a timed-out request's) is dropped. */
  private dispatch(message: ReceivedMessage): void {
    closeFds(message.fds);
    if ((message.flags & VfioUserFlags.TYPE_MASK) === VfioUserFlags.TYPE_REPLY) return;
    const outcome = this.options.serveCommand(message);
    if ((message.flags & VfioUserFlags.NO_REPLY) !== 0) return;
    const header = { id: message.id, command: message.command, flags: VfioUserFlags.TYPE_REPLY };
    const reply =
      "errno" in outcome
        ? encodeMessage({ ...header, flags: header.flags | VfioUserFlags.ERROR, errorNo: outcome.errno })
        : encodeMessage(header, outcome.payload);
    this.send(reply, [], Date.now() + this.options.timeoutMs);
  }

  /**
   * Sends one whole message. A full socket is waited out while reading (not serving: a reply must not land inside
   * this message) what the server sends, so a server blocked on writing to us can go on; a message that cannot be
   * finished in time leaves the stream broken, which loses the server.
   */
  private send(message: Uint8Array, fds: readonly number[], deadline: number): void {
    let sent = 0;
    while (sent < message.length) {
      let count: number;
      try {
        count = sendFds(this.socket, message.subarray(sent), sent === 0 ? fds : []);
      } catch (error) {
        throw this.failure(error, "sendmsg");
      }
      if (count > 0) {
        sent += count;
        continue;
      }
      if (Date.now() >= deadline) {
        const what = sent === 0 ? "" : ` after ${sent} of ${message.length} bytes`;
        if (sent === 0) throw new VfioUserTimeoutError(this.options.label, "sending a message", this.options.timeoutMs);
        throw this.loseAndThrow(`${this.options.label} stopped taking messages${what}`);
      }
      if (this.receive() !== "data") this.wait(1);
    }
  }

  /** A failed system call on the socket: the server is gone. */
  private failure(error: unknown, syscall: string): Error {
    const detail = error instanceof HostIoError ? error.errno : error instanceof Error ? error.message : String(error);
    // A server killed with messages unread resets the connection instead of closing it: the same loss to the user.
    if (detail === "ECONNRESET" || detail === "EPIPE") return this.loseAndThrow(`${this.options.label} closed the connection`);
    return this.loseAndThrow(`${this.options.label}: the connection failed (${syscall}: ${detail})`);
  }

  private loseAndThrow(reason: string): VfioBackendLostError {
    this.lose(reason);
    return new VfioBackendLostError(this.lostReason ?? reason);
  }

  private lose(reason: string): void {
    if (this.lostReason !== undefined || this.closed) return;
    this.lostReason = reason;
    this.shutdown();
    const callbacks = this.lostCallbacks.splice(0);
    queueMicrotask(() => {
      for (const callback of callbacks) callback(reason);
    });
  }

  private shutdown(): void {
    this.watch?.close();
    this.watch = undefined;
    this.rx.discard();
    if (this.socket >= 0) {
      try {
        closeSync(this.socket);
      } catch {
        // already closed
      }
      this.socket = -1;
    }
  }
}
