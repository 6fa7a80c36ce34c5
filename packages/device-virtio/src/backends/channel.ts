import { type Server, type Socket, createServer } from "node:net";
import type { Readable, Writable } from "node:stream";
import { listenUnix } from "./unix-listen.js";

/** A host byte stream behind a virtio-console port. */
export interface ByteChannel {
  /** Starts delivering host input to `receive`. */
  open(receive: (bytes: Uint8Array) => void): void;
  write(bytes: Uint8Array): void;
  /** Flow control: stop / restart host input while the guest has no room. */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

/** A channel over node streams (stdio, or PassThrough pairs in tests). */
export class StreamChannel implements ByteChannel {
  constructor(
    private readonly input: Readable | undefined,
    private readonly output: Writable | undefined,
  ) {}
  open(receive: (bytes: Uint8Array) => void): void {
    this.input?.on("data", (chunk: Buffer | string) => receive(typeof chunk === "string" ? Buffer.from(chunk) : chunk));
  }
  write(bytes: Uint8Array): void {
    this.output?.write(bytes);
  }
  pause(): void {
    this.input?.pause();
  }
  resume(): void {
    this.input?.resume();
  }
  async close(): Promise<void> {
    this.input?.pause();
  }
}

/** The VM's stdin and stdout. */
export function stdioChannel(): ByteChannel {
  return new StreamChannel(process.stdin, process.stdout);
}

/**
 * A Unix socket server at `path`: one client at a time is the other end of the console (a newer client replaces
 * the older one). Output while nobody is connected is dropped, like a serial line with no cable.
 */
export class UnixServerChannel implements ByteChannel {
  private client: Socket | undefined;
  private receive: ((bytes: Uint8Array) => void) | undefined;
  private paused = false;

  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {
    server.on("connection", (socket) => {
      this.client?.destroy();
      this.client = socket;
      if (this.paused) socket.pause();
      socket.on("data", (chunk) => this.receive?.(chunk));
      socket.on("error", () => socket.destroy());
      socket.on("close", () => {
        if (this.client === socket) this.client = undefined;
      });
    });
  }

  static async listen(path: string): Promise<UnixServerChannel> {
    const server = createServer();
    await listenUnix(server, path);
    return new UnixServerChannel(server, path);
  }

  open(receive: (bytes: Uint8Array) => void): void {
    this.receive = receive;
  }
  write(bytes: Uint8Array): void {
    this.client?.write(bytes);
  }
  pause(): void {
    this.paused = true;
    this.client?.pause();
  }
  resume(): void {
    this.paused = false;
    this.client?.resume();
  }
  async close(): Promise<void> {
    this.client?.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
