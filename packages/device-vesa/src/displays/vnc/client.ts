import { type Socket, connect } from "node:net";
import { constants, inflateSync } from "node:zlib";
import type { Rect, RgbaFrame } from "../../framebuffer.js";
import { Encoding } from "./encodings.js";
import { type PixelFormat, SERVER_PIXEL_FORMAT, writePixelFormat } from "./pixel-format.js";

/** One rectangle of an update as received: pixels in the client's pixel format (absent for DesktopSize). */
export interface ReceivedRect extends Rect {
  readonly encoding: number;
  readonly pixels?: Buffer;
}

/** Reads exact byte counts from a socket. */
class ByteReader {
  private buffer = Buffer.alloc(0);
  private waiter: (() => void) | undefined;
  private ended: Error | undefined;

  constructor(socket: Socket) {
    socket.on("data", (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      this.waiter?.();
    });
    const end = (e?: Error) => {
      this.ended ??= e ?? new Error("the server closed the connection");
      this.waiter?.();
    };
    socket.on("error", end);
    socket.on("close", () => end());
  }

  async read(n: number): Promise<Buffer> {
    while (this.buffer.length < n) {
      if (this.ended) throw this.ended;
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = undefined;
    }
    const out = this.buffer.subarray(0, n);
    this.buffer = this.buffer.subarray(n);
    return out;
  }
}

/**
 * A small RFB 3.8 client (security None; Raw, Zlib, DesktopSize) used to take screenshots of a running VM's
 * VNC display (`vmm screenshot`) and by tests. It keeps an RGBA copy of the screen when it uses the server's
 * 32-bit pixel format.
 */
export class RfbClient {
  width = 0;
  height = 0;
  name = "";
  private format: PixelFormat = SERVER_PIXEL_FORMAT;
  private rgba = new Uint8Array(0);
  private zlibIn: Buffer[] = [];
  private zlibOutLength = 0;

  private constructor(
    private readonly socket: Socket,
    private readonly reader: ByteReader,
  ) {}

  static async connect(port: number, host = "127.0.0.1"): Promise<RfbClient> {
    const socket = connect(port, host);
    const reader = new ByteReader(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const client = new RfbClient(socket, reader);
    await client.handshake();
    return client;
  }

  /** The screen as last received (valid with the server's pixel format). */
  get frame(): RgbaFrame {
    return { width: this.width, height: this.height, rgba: this.rgba };
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  setEncodings(encodings: number[]): void {
    const msg = Buffer.alloc(4 + 4 * encodings.length);
    msg[0] = 2;
    msg.writeUInt16BE(encodings.length, 2);
    encodings.forEach((e, i) => msg.writeInt32BE(e, 4 + 4 * i));
    this.send(msg);
  }

  setPixelFormat(format: PixelFormat): void {
    const msg = Buffer.alloc(20);
    writePixelFormat(format, msg, 4);
    this.format = format;
    this.send(msg);
  }

  requestUpdate(incremental: boolean, rect: Rect = { x: 0, y: 0, width: this.width, height: this.height }): void {
    const msg = Buffer.alloc(10);
    msg[0] = 3;
    msg[1] = incremental ? 1 : 0;
    msg.writeUInt16BE(rect.x, 2);
    msg.writeUInt16BE(rect.y, 4);
    msg.writeUInt16BE(rect.width, 6);
    msg.writeUInt16BE(rect.height, 8);
    this.send(msg);
  }

  key(keysym: number, down: boolean): void {
    const msg = Buffer.alloc(8);
    msg[0] = 4;
    msg[1] = down ? 1 : 0;
    msg.writeUInt32BE(keysym >>> 0, 4);
    this.send(msg);
  }

  /** Reads one FramebufferUpdate and applies it. */
  async readUpdate(): Promise<ReceivedRect[]> {
    const head = await this.reader.read(4);
    if (head[0] !== 0) throw new Error(`unexpected server message type ${head[0]}`);
    const rects: ReceivedRect[] = [];
    for (let i = head.readUInt16BE(2); i > 0; i--) {
      const h = await this.reader.read(12);
      const r = { x: h.readUInt16BE(0), y: h.readUInt16BE(2), width: h.readUInt16BE(4), height: h.readUInt16BE(6), encoding: h.readInt32BE(8) };
      const size = r.width * r.height * (this.format.bitsPerPixel >> 3);
      if (r.encoding === Encoding.DesktopSize) {
        this.resize(r.width, r.height);
        rects.push(r);
      } else if (r.encoding === Encoding.Raw) {
        rects.push(this.apply({ ...r, pixels: Buffer.from(await this.reader.read(size)) }));
      } else if (r.encoding === Encoding.Zlib) {
        const len = (await this.reader.read(4)).readUInt32BE(0);
        rects.push(this.apply({ ...r, pixels: this.inflate(Buffer.from(await this.reader.read(len)), size) }));
      } else {
        throw new Error(`unexpected encoding ${r.encoding}`);
      }
    }
    return rects;
  }

  close(): void {
    this.socket.destroy();
  }

  private async handshake(): Promise<void> {
    const version = (await this.reader.read(12)).toString("latin1");
    if (!/^RFB 003\.\d{3}\n$/.test(version)) throw new Error(`not an RFB server: ${JSON.stringify(version)}`);
    this.send(Buffer.from("RFB 003.008\n"));
    const count = (await this.reader.read(1))[0]!;
    if (count === 0) throw new Error("the server refused the connection");
    const types = await this.reader.read(count);
    if (!types.includes(1)) throw new Error(`the server wants authentication (security types ${[...types].join(", ")})`);
    this.send(Buffer.of(1));
    if ((await this.reader.read(4)).readUInt32BE(0) !== 0) throw new Error("security handshake failed");
    this.send(Buffer.of(1)); // shared
    const init = await this.reader.read(24);
    this.resize(init.readUInt16BE(0), init.readUInt16BE(2));
    this.name = (await this.reader.read(init.readUInt32BE(20))).toString("utf8");
  }

  private resize(width: number, height: number): void {
    this.width = width;
    this.height = height;
    this.rgba = new Uint8Array(width * height * 4);
  }

  /** Inflates one Zlib rectangle as a continuation of the connection's stream. */
  private inflate(data: Buffer, expected: number): Buffer {
    this.zlibIn.push(data);
    const all = inflateSync(Buffer.concat(this.zlibIn), { finishFlush: constants.Z_SYNC_FLUSH });
    const out = all.subarray(this.zlibOutLength);
    this.zlibOutLength = all.length;
    if (out.length !== expected) throw new Error(`zlib rectangle inflated to ${out.length} bytes, expected ${expected}`);
    return out;
  }

  private apply(r: ReceivedRect): ReceivedRect {
    const f = this.format;
    if (f.bitsPerPixel !== 32 || f.bigEndian || f.redShift !== 16 || f.greenShift !== 8 || f.blueShift !== 0) return r;
    const px = r.pixels!;
    for (let row = 0; row < r.height; row++) {
      for (let col = 0; col < r.width; col++) {
        const s = (row * r.width + col) * 4;
        const d = ((r.y + row) * this.width + r.x + col) * 4;
        this.rgba[d] = px[s + 2]!;
        this.rgba[d + 1] = px[s + 1]!;
        this.rgba[d + 2] = px[s]!;
        this.rgba[d + 3] = 0xff;
      }
    }
    return r;
  }
}
