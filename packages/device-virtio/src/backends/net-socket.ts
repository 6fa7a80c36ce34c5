import { connect, createServer, type Server, type Socket } from "node:net";
import { ConfigurationError, type Logger } from "@vmm/core";
import { listenUnix } from "./unix-listen.js";

/** Moves Ethernet frames between a virtio-net device and the host. */
export interface NetBackend {
  /**
   * Starts delivering received frames to `receive`. `writable` is called when a backend that was `congested`
   * takes frames again (or will drop them: its peer went away).
   */
  open(receive: (frame: Uint8Array) => void, writable?: () => void): void;
  send(frame: Uint8Array): void;
  close(): Promise<void>;
  /** Optional flow control: stop delivering frames, leaving them queued at the source, until `resume()`. */
  pause?(): void;
  resume?(): void;
  /**
   * Optional flow control of transmit: true while frames already sent wait in this process for a peer that reads
   * slower than the guest sends. The device then leaves transmit chains in the ring (the guest sees a full queue)
   * until `writable`, instead of queueing frames in memory without bound.
   */
  congested?(): boolean;
  /**
   * Optional: a non-blocking fd where each read is one received frame and each write sends one (a tap, a unix
   * datagram socket), which the device's data-plane workers then use directly. While a worker uses it for receive
   * the device holds the backend paused; transmit goes through either `send` or the worker, never both at once.
   */
  frameFd?(): FrameFd | undefined;
  /** The backend's own counters (frames it dropped: no peer, a host queue full), shown with the device's. */
  counters?(): Readonly<Record<string, number>>;
}

/** A backend's frame fd (see `NetBackend.frameFd`). */
export interface FrameFd {
  readonly fd: number;
  /** A unix datagram socket's peer path: a worker whose sends find no peer reconnects there (host-io's unixDgramConnect). */
  readonly peer?: string;
}

/** Largest frame the socket carries: a 64 KiB GSO-sized frame plus an Ethernet header with a VLAN tag. */
export const MAX_FRAME = 65536 + 18;

export type SocketMode = "auto" | "listen" | "connect";

/**
 * Splits a byte stream into frames prefixed by a 32-bit big-endian length (the framing QEMU's stream netdev
 * uses). A length of 0 or above MAX_FRAME means the peer is broken: `onBad` is called and parsing stops. While
 * paused it keeps what arrives (a stream chunk already read holds up to ~1000 small frames) instead of handing
 * frames on; `resume` hands them on from a microtask, not from inside the caller.
 */
export class FrameDecoder {
  private buffer: Buffer = Buffer.alloc(0);
  private broken = false;
  private paused = false;
  constructor(
    private readonly onFrame: (frame: Uint8Array) => void,
    private readonly onBad: (length: number) => void,
  ) {}
  push(chunk: Buffer): void {
    if (this.broken) return;
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    this.emit();
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    queueMicrotask(() => this.emit());
  }
  /** Hands on every whole frame buffered, until a frame's receiver pauses the decoder. */
  private emit(): void {
    while (!this.broken && !this.paused && this.buffer.length >= 4) {
      const length = this.buffer.readUInt32BE(0);
      if (length === 0 || length > MAX_FRAME) {
        this.broken = true;
        this.onBad(length);
        return;
      }
      if (this.buffer.length < 4 + length) break;
      this.onFrame(Uint8Array.prototype.slice.call(this.buffer, 4, 4 + length));
      this.buffer = this.buffer.subarray(4 + length);
    }
  }
}

export function encodeFrame(frame: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + frame.length);
  out.writeUInt32BE(frame.length, 0);
  out.set(frame, 4);
  return out;
}

/**
 * A point-to-point link over a Unix stream socket: one VM listens at `path`, the other connects, frames are
 * length-prefixed. In "auto" mode the first VM to start listens and the second connects. Frames sent while no
 * peer is connected are dropped, like a cable that is not plugged in.
 */
export class SocketNetBackend implements NetBackend {
  private peer: Socket | undefined;
  private receive: ((frame: Uint8Array) => void) | undefined;
  private writable: (() => void) | undefined;
  private paused = false;
  private decoder: FrameDecoder | undefined;
  /** Frames dropped because no peer was connected. */
  dropped = 0;

  private constructor(
    readonly path: string,
    readonly role: "listen" | "connect",
    private readonly server: Server | undefined,
    private readonly logger: Logger | undefined,
  ) {}

  static async open(path: string, mode: SocketMode = "auto", logger?: Logger): Promise<SocketNetBackend> {
    if (mode !== "listen") {
      try {
        const socket = await dial(path);
        const backend = new SocketNetBackend(path, "connect", undefined, logger);
        backend.adopt(socket);
        return backend;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (mode === "connect" || (code !== "ENOENT" && code !== "ECONNREFUSED")) {
          throw new ConfigurationError(`virtio-net socket ${path}: cannot connect (${code ?? (e as Error).message})`, { cause: e });
        }
      }
    }
    const server = createServer();
    await listenUnix(server, path);
    const backend = new SocketNetBackend(path, "listen", server, logger);
    server.on("connection", (socket) => backend.adopt(socket));
    return backend;
  }

  /** True while a peer is connected. */
  get connected(): boolean {
    return this.peer !== undefined;
  }

  open(receive: (frame: Uint8Array) => void, writable?: () => void): void {
    this.receive = receive;
    this.writable = writable;
  }

  send(frame: Uint8Array): void {
    if (!this.peer || frame.length === 0 || frame.length > MAX_FRAME) {
      this.dropped++;
      return;
    }
    this.peer.write(encodeFrame(frame));
  }

  counters(): Readonly<Record<string, number>> {
    return { backendTxDropped: this.dropped };
  }

  /** Frames wait in this process: the peer reads slower than the guest sends. */
  congested(): boolean {
    return this.peer?.writableNeedDrain ?? false;
  }

  /** The guest has no receive buffers: stop reading, so frames wait in the socket and the peer's writes stall. */
  pause(): void {
    this.paused = true;
    this.peer?.pause();
    this.decoder?.pause();
  }

  resume(): void {
    this.paused = false;
    this.peer?.resume();
    this.decoder?.resume();
  }

  async close(): Promise<void> {
    this.peer?.destroy();
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }

  private adopt(socket: Socket): void {
    this.peer?.destroy(); // a newer peer replaces the old one
    this.peer = socket;
    const decoder = new FrameDecoder(
      (frame) => this.receive?.(frame),
      (length) => {
        this.logger?.warn(`virtio-net socket ${this.path}: peer sent a frame length of ${length}; disconnecting`);
        socket.destroy();
      },
    );
    this.decoder = decoder;
    socket.on("data", (chunk) => decoder.push(chunk));
    socket.on("drain", () => this.writable?.());
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      if (this.peer !== socket) return;
      this.peer = undefined;
      this.writable?.(); // a transmit waiting for this peer goes on (and drops until another connects)
    });
    if (this.paused) {
      socket.pause();
      decoder.pause();
    }
  }
}

function dial(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}
