import { type IncomingMessage, type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "@vmm/core";
import type { Rect, RgbaFrame } from "../../framebuffer.js";
import type { FrameSource } from "../../screen.js";
import { FrameDiffer } from "../differ.js";
import { ScreenTracker } from "../tracker.js";
import type { Display } from "../display.js";
import { PAGE_HTML } from "./page.js";
import { WebSocketConnection } from "./websocket.js";

export interface WebDisplayOptions {
  /** TCP port on 127.0.0.1; 0 picks a free one (see `port` after start). */
  readonly port: number;
  readonly logger?: Logger;
  readonly pollMs?: number;
}

/** One page: what it was sent, and whether it asked for the next update. */
class WebClient {
  readonly differ = new FrameDiffer();
  ready = false;
  width = 0;
  height = 0;
  constructor(
    readonly ws: WebSocketConnection,
    readonly tracker: ScreenTracker,
  ) {}
}

/** `web[:PORT]`: a page on 127.0.0.1 that shows the picture live in a canvas, fed over a WebSocket. */
export class WebDisplay implements Display {
  readonly kind = "web";
  private server: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly clients = new Set<WebClient>();
  port: number;

  constructor(
    private readonly source: FrameSource,
    private readonly options: WebDisplayOptions,
  ) {
    this.port = options.port;
  }

  get description(): string {
    return `web on http://127.0.0.1:${this.port}/`;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      if (!this.trusted(req)) {
        res.writeHead(403, { "content-type": "text/plain" });
        return void res.end("forbidden: the display only answers pages it served itself\n");
      }
      if (req.method === "GET" && (req.url === "/" || req.url === "/index.html")) {
        res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
        res.end(PAGE_HTML);
      } else {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("not found\n");
      }
    });
    server.on("connection", (socket) => socket.unref());
    server.on("upgrade", (req, socket) => {
      if (!this.trusted(req)) return void socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n");
      if (req.url !== "/ws") return void socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
      let client: WebClient | undefined;
      const ws = WebSocketConnection.accept(req, socket, {
        onText: (text) => client && this.message(client, text),
        onClose: (reason) => {
          if (reason) this.options.logger?.warn(`web: closing a page connection: ${reason}`);
          if (client) {
            client.tracker.close();
            this.clients.delete(client);
          }
        },
      });
      if (!ws) return;
      client = new WebClient(ws, new ScreenTracker(this.source));
      this.clients.add(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port, "127.0.0.1", () => resolve());
    });
    server.on("error", (e) => this.options.logger?.warn(`web: ${e.message}`));
    server.unref();
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.timer = setInterval(() => {
      for (const c of this.clients) if (c.ready) this.update(c);
    }, this.options.pollMs ?? 30);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const c of this.clients) c.ws.close(1001);
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  /**
   * Browsers let any web page open a WebSocket to 127.0.0.1, so other sites could watch the screen and type:
   * only requests addressed to this host and port (no DNS rebinding) from our own page's origin are served.
   */
  private trusted(req: IncomingMessage): boolean {
    const hosts = [`127.0.0.1:${this.port}`, `localhost:${this.port}`];
    if (!hosts.includes(req.headers.host ?? "")) return false;
    const origin = req.headers.origin;
    return origin === undefined || hosts.some((h) => origin === `http://${h}`);
  }

  private message(client: WebClient, text: string): void {
    if (text === "ready") {
      client.ready = true;
      this.update(client);
      return;
    }
    const key = /^key (\d{1,10}) ([01])$/.exec(text);
    if (key) return this.source.key(Number(key[1]) >>> 0, key[2] === "1");
    client.ws.close(1003, `unexpected message ${JSON.stringify(text.slice(0, 40))}`);
  }

  /** Sends what changed since the page's last update, if anything did. */
  private update(client: WebClient): void {
    const change = client.tracker.update();
    const frame = client.tracker.frame;
    const resized = frame.width !== client.width || frame.height !== client.height;
    if (!change && !resized) return;
    if (resized) client.differ.reset();
    const rects = client.differ.changes(frame, resized ? undefined : change?.rows);
    if (!resized && rects.length === 0) return;
    client.ready = false;
    const parts: Buffer[] = [];
    if (resized) {
      client.width = frame.width;
      client.height = frame.height;
      const msg = Buffer.alloc(5);
      msg[0] = 1;
      msg.writeUInt16BE(frame.width, 1);
      msg.writeUInt16BE(frame.height, 3);
      parts.push(msg);
    }
    for (const r of rects) {
      parts.push(rectMessage(frame, r));
      client.differ.markSent(frame, r);
    }
    parts.push(Buffer.of(3));
    for (const p of parts) client.ws.sendBinary(p);
  }
}

function rectMessage(frame: RgbaFrame, r: Rect): Buffer {
  const msg = Buffer.alloc(9 + r.width * r.height * 4);
  msg[0] = 2;
  msg.writeUInt16BE(r.x, 1);
  msg.writeUInt16BE(r.y, 3);
  msg.writeUInt16BE(r.width, 5);
  msg.writeUInt16BE(r.height, 7);
  for (let row = 0; row < r.height; row++) {
    const from = ((r.y + row) * frame.width + r.x) * 4;
    msg.set(frame.rgba.subarray(from, from + r.width * 4), 9 + row * r.width * 4);
  }
  return msg;
}
