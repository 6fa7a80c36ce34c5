import { type AddressInfo, type Server, createServer } from "node:net";
import type { Logger } from "@vmm/core";
import type { FrameSource } from "../../screen.js";
import type { Display } from "../display.js";
import { VncConnection } from "./connection.js";

export interface VncDisplayOptions {
  /** TCP port on 127.0.0.1; 0 picks a free one (see `port` after start). */
  readonly port: number;
  readonly name?: string;
  readonly logger?: Logger;
  /** How often pending incremental requests look for changes, in ms. */
  readonly pollMs?: number;
}

/**
 * `vnc[:PORT]`: an RFB server on 127.0.0.1 (security None; Raw and Zlib encodings; DesktopSize). The listening
 * socket, the client sockets and the poll timer are unref'd: a display never keeps a stopped VM's process alive.
 */
export class VncDisplay implements Display {
  readonly kind = "vnc";
  private server: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  readonly connections = new Set<VncConnection>();
  port: number;

  constructor(
    private readonly source: FrameSource,
    private readonly options: VncDisplayOptions,
  ) {
    this.port = options.port;
  }

  get description(): string {
    return `vnc on 127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = createServer((socket) => {
      socket.unref();
      const conn = new VncConnection(socket, this.source, {
        name: this.options.name ?? "vmm",
        onError: (m) => this.options.logger?.warn(`vnc: ${m}`),
        onClose: () => this.connections.delete(conn),
      });
      this.connections.add(conn);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port, "127.0.0.1", () => resolve());
    });
    server.on("error", (e) => this.options.logger?.warn(`vnc: ${e.message}`));
    server.unref();
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.timer = setInterval(() => {
      for (const c of this.connections) if (c.waiting) c.service();
    }, this.options.pollMs ?? 30);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const c of this.connections) c.close();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
