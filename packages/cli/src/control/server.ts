import { chmodSync, lstatSync, unlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { ConfigurationError } from "@vmm/core";
import type { VcpuRegisters } from "../arch/machine.js";
import { describe, UsageError } from "../errors.js";
import { inspectSocket, prepareControlDir, removeStaleSocket } from "./paths.js";
import {
  MAX_REQUEST_LINE,
  parseRequest,
  PROTOCOL_VERSION,
  replyLine,
  type ControlCommand,
  type ControlEvent,
  type ControlReply,
  type ControlRequest,
  type SnapshotReply,
  type SnapshotThen,
  type PowerdownResult,
  type ScreenshotReply,
  type VmStats,
  type VmStatus,
} from "./protocol.js";

/** What the server asks of the VM it controls; a method throws to refuse (its message becomes the error reply). */
export interface ControlTarget {
  status(): VmStatus;
  pause(): void;
  resume(): void;
  /** Starts stopping the VM; the reply goes out before the VM is gone. */
  stop(): void;
  stats(): VmStats;
  /** Every vCPU's registers (`vmm debug`). */
  registers(): readonly VcpuRegisters[];
  /** Presses the VM's ACPI power button (a graceful stop: the guest decides); the reply goes out at once. */
  powerdown(): PowerdownResult;
  /** The VM's display now, as a PNG (`vmm screenshot`: the client writes the file). */
  screenshot(): ScreenshotReply;
  /**
   * Pauses the VM, writes its snapshot into `dir`, then resumes it, leaves it paused or stops it (`vmm snapshot`);
   * without `then`, the VM goes back to running or stays paused as it was.
   */
  snapshot(dir: string, then?: SnapshotThen): Promise<SnapshotReply>;
}

/** A client that reads nothing while this much of its replies (or events) is queued is disconnected. */
const MAX_QUEUED_BYTES = 256 * 1024;
/** Connections served at once; more are refused by the kernel's backlog, not by queuing in vmm. */
const MAX_CONNECTIONS = 32;

type Handler = (target: ControlTarget, request: ControlRequest, subscribe: () => void) => ControlReply | Promise<ControlReply>;

/** What each command does: one table, one line each. */
const HANDLERS: Readonly<Record<ControlCommand, Handler>> = {
  status: (t) => ({ ok: true, ...t.status() }),
  pause: (t) => (t.pause(), { ok: true, state: t.status().state }),
  resume: (t) => (t.resume(), { ok: true, state: t.status().state }),
  stop: (t) => (t.stop(), { ok: true, pid: process.pid }),
  stat: (t) => ({ ok: true, ...t.stats() }),
  registers: (t) => ({ ok: true, vcpus: t.registers() }),
  powerdown: (t) => ({ ok: true, pid: process.pid, ...t.powerdown() }),
  screenshot: (t) => ({ ok: true, ...t.screenshot() }),
  events: (_, _request, subscribe) => (subscribe(), { ok: true, subscribed: true }),
  snapshot: async (t, r) => ({ ok: true, ...(await t.snapshot(r.args.dir as string, r.args.then as SnapshotThen | undefined)) }),
};

/**
 * A VM's control socket: claims the path (refusing a name a live VM holds, removing a dead VM's socket), listens
 * with mode 0600, answers each request line from HANDLERS, and removes the socket when closed or when the process
 * exits. Request handlers run on the event loop, between vCPU slices, so they never race a running vCPU.
 */
export class ControlServer {
  private readonly connections = new Set<Socket>();
  private readonly subscribers = new Set<Socket>();
  private inode: number | undefined;
  private readonly removeOnExit = () => this.removeSocket();

  private constructor(
    readonly file: string,
    private readonly server: Server,
    private readonly target: ControlTarget,
  ) {}

  /** Claims `file` for the VM `name` and listens on it. */
  static async open(dir: string, file: string, name: string, target: ControlTarget): Promise<ControlServer> {
    await prepareControlDir(dir);
    const state = await inspectSocket(file);
    if (state === "live") throw new UsageError(`a VM named '${name}' is already running (control socket ${file}); choose another --name`);
    if (state === "not-socket") throw new ConfigurationError(`'${file}' is in the way of VM '${name}''s control socket and is not a socket; it was left alone`);
    if (state === "stale") await removeStaleSocket(file);

    const server = createServer();
    server.maxConnections = MAX_CONNECTIONS;
    const control = new ControlServer(file, server, target);
    server.on("connection", (socket) => control.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error: NodeJS.ErrnoException) =>
        reject(error.code === "EADDRINUSE" ? new UsageError(`a VM named '${name}' is already running (control socket ${file}); choose another --name`) : error),
      );
      server.listen(file, () => resolve());
    });
    // The directory is 0700 already; the socket is made 0600 too so that a looser directory later does not expose it.
    chmodSync(file, 0o600);
    control.inode = lstatSync(file).ino;
    server.on("error", () => {});
    process.on("exit", control.removeOnExit);
    return control;
  }

  /** Sends an event line to every `events` subscriber. */
  emit(event: ControlEvent["event"], name: string): void {
    const line = JSON.stringify({ v: PROTOCOL_VERSION, event, name, time: new Date().toISOString() } satisfies ControlEvent) + "\n";
    for (const socket of this.subscribers) this.send(socket, line);
  }

  /** Stops listening, ends every connection and removes the socket. */
  async close(): Promise<void> {
    process.off("exit", this.removeOnExit);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.connections) socket.destroy();
    await closed;
    this.removeSocket();
  }

  /** Removes the socket file if it is still the one this server created (a later VM may own the name by now). */
  private removeSocket(): void {
    try {
      const info = lstatSync(this.file);
      if (info.isSocket() && info.ino === this.inode) unlinkSync(this.file);
    } catch {
      // already gone
    }
  }

  private serve(socket: Socket): void {
    this.connections.add(socket);
    socket.on("close", () => {
      this.connections.delete(socket);
      this.subscribers.delete(socket);
    });
    socket.on("error", () => {});
    let pending = Buffer.alloc(0);
    // Replies leave in request order even when one takes time (a snapshot): each waits for the one before.
    let replies: Promise<void> = Promise.resolve();
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (let newline = pending.indexOf(0x0a); newline >= 0 && !socket.destroyed; newline = pending.indexOf(0x0a)) {
        const line = pending.subarray(0, newline).toString("utf8").replace(/\r$/, "");
        pending = pending.subarray(newline + 1);
        if (line.trim()) replies = this.answer(socket, line, replies);
      }
      if (pending.length > MAX_REQUEST_LINE) {
        // A line this long is no request of this protocol; reading on would only buffer what a client sends.
        this.send(socket, replyLine(undefined, { ok: false, error: `request line longer than ${MAX_REQUEST_LINE} bytes` }));
        pending = Buffer.alloc(0);
        socket.end();
        socket.pause();
      }
    });
  }

  /** Runs one request now; its reply is sent once `before` (the previous reply on this connection) went out. */
  private answer(socket: Socket, line: string, before: Promise<void>): Promise<void> {
    const parsed = parseRequest(line);
    if ("error" in parsed) return before.then(() => this.send(socket, replyLine(parsed.id, { ok: false, error: parsed.error })));
    const { request } = parsed;
    const refuse = (error: unknown): ControlReply => ({ ok: false, error: describe(error) });
    let reply: ControlReply | Promise<ControlReply>;
    try {
      reply = HANDLERS[request.cmd](this.target, request, () => this.subscribers.add(socket));
    } catch (error) {
      reply = refuse(error);
    }
    // Most replies are immediate; a snapshot's comes when its files are written.
    const settled = reply instanceof Promise ? reply.catch(refuse) : reply;
    return before.then(async () => this.send(socket, replyLine(request.id, await settled)));
  }

  private send(socket: Socket, line: string): void {
    if (socket.destroyed || !socket.writable) return;
    // A client that does not read its replies is dropped rather than buffered without end.
    if (socket.writableLength > MAX_QUEUED_BYTES) return void socket.destroy();
    socket.write(line);
  }
}
