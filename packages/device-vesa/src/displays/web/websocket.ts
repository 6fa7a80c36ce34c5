import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** Clients only send small control messages; anything bigger is refused. */
const MAX_CLIENT_PAYLOAD = 64 * 1024;

export function acceptKey(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

export interface WebSocketHandlers {
  onText(text: string): void;
  onClose(reason?: string): void;
}

/**
 * A server-side WebSocket (RFC 6455) over an upgraded HTTP socket: unfragmented text and binary messages,
 * ping/pong and close. Protocol violations (unmasked or oversized frames, fragments, unknown opcodes) close it.
 */
export class WebSocketConnection {
  private input: Buffer = Buffer.alloc(0);
  private closed = false;

  private constructor(
    private readonly socket: Duplex,
    private readonly handlers: WebSocketHandlers,
  ) {
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("error", () => this.destroy());
    socket.on("close", () => this.destroy());
  }

  /** Completes the opening handshake, or answers 400 and returns undefined. */
  static accept(req: IncomingMessage, socket: Duplex, handlers: WebSocketHandlers): WebSocketConnection | undefined {
    const key = req.headers["sec-websocket-key"];
    const upgrade = req.headers.upgrade?.toLowerCase();
    if (upgrade !== "websocket" || typeof key !== "string" || req.headers["sec-websocket-version"] !== "13") {
      socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
      return undefined;
    }
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
    );
    return new WebSocketConnection(socket, handlers);
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  sendBinary(data: Buffer): void {
    this.frame(0x2, data);
  }

  close(code = 1000, reason?: string): void {
    if (this.closed) return;
    const body = Buffer.alloc(2);
    body.writeUInt16BE(code);
    this.frame(0x8, body);
    this.socket.end();
    this.destroy(reason);
  }

  private destroy(reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.handlers.onClose(reason);
  }

  private frame(opcode: number, payload: Buffer): void {
    if (this.closed) return;
    const n = payload.length;
    const head = n < 126 ? Buffer.alloc(2) : n < 0x10000 ? Buffer.alloc(4) : Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    if (n < 126) head[1] = n;
    else if (n < 0x10000) {
      head[1] = 126;
      head.writeUInt16BE(n, 2);
    } else {
      head[1] = 127;
      head.writeBigUInt64BE(BigInt(n), 2);
    }
    this.socket.write(Buffer.concat([head, payload]));
  }

  private receive(chunk: Buffer): void {
    this.input = this.input.length ? Buffer.concat([this.input, chunk]) : chunk;
    while (!this.closed) {
      const problem = this.takeFrame();
      if (problem === undefined) return;
      if (problem) return this.close(1002, problem);
    }
  }

  /** Handles one complete frame: "" when done, a reason string for a violation, undefined when more bytes are needed. */
  private takeFrame(): string | undefined {
    const b = this.input;
    if (b.length < 2) return undefined;
    const fin = (b[0]! & 0x80) !== 0;
    const opcode = b[0]! & 0x0f;
    const masked = (b[1]! & 0x80) !== 0;
    let len = b[1]! & 0x7f;
    let at = 2;
    if (len === 126) {
      if (b.length < 4) return undefined;
      len = b.readUInt16BE(2);
      at = 4;
    } else if (len === 127) {
      if (b.length < 10) return undefined;
      const big = b.readBigUInt64BE(2);
      if (big > BigInt(MAX_CLIENT_PAYLOAD)) return `frame of ${big} bytes`;
      len = Number(big);
      at = 10;
    }
    if (!masked) return "unmasked client frame";
    if (b[0]! & 0x70) return "reserved bits set";
    if (!fin || opcode === 0) return "fragmented messages are not supported";
    if (len > MAX_CLIENT_PAYLOAD) return `frame of ${len} bytes`;
    if (b.length < at + 4 + len) return undefined;
    const mask = b.subarray(at, at + 4);
    const payload = Buffer.from(b.subarray(at + 4, at + 4 + len));
    for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
    this.input = b.subarray(at + 4 + len);
    switch (opcode) {
      case 0x1:
        this.handlers.onText(payload.toString("utf8"));
        return "";
      case 0x2:
        return "binary messages are not expected from the page";
      case 0x8:
        this.close(1000);
        return "";
      case 0x9:
        this.frame(0xa, payload);
        return "";
      case 0xa:
        return "";
      default:
        return `unknown opcode ${opcode}`;
    }
  }
}
