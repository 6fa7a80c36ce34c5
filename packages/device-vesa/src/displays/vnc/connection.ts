import type { Socket } from "node:net";
import { NO_SIGNAL, type Rect, type RgbaFrame } from "../../framebuffer.js";
import type { FrameSource } from "../../screen.js";
import { FrameDiffer } from "../differ.js";
import { ScreenTracker } from "../tracker.js";
import { Encoding, ZlibRectEncoder, rectHeader } from "./encodings.js";
import { type ClientMessage, RfbProtocolError, parseClientMessage } from "./messages.js";
import { type PixelFormat, SERVER_PIXEL_FORMAT, encodePixels, writePixelFormat } from "./pixel-format.js";

type Phase = "version" | "security" | "init" | "normal" | "closed";

export interface VncConnectionOptions {
  readonly name: string;
  readonly onError: (message: string) => void;
  readonly onClose: () => void;
}

/** What the connection sent, for tests and diagnostics. */
export interface VncStats {
  updates: number;
  rects: Record<string, number>;
}

const ENCODING_NAMES: Record<number, string> = { [Encoding.Raw]: "raw", [Encoding.Zlib]: "zlib", [Encoding.DesktopSize]: "desktop-size" };

/**
 * One RFB client (protocol 3.3, 3.7 or 3.8, security type None). A state machine over the socket's bytes:
 * handshake, then client messages. Update requests that find nothing new stay pending until `service()` sees
 * a change. Any malformed input closes this connection only.
 */
export class VncConnection {
  private phase: Phase = "version";
  private minor = 8;
  private input: Buffer = Buffer.alloc(0);
  private format: PixelFormat = SERVER_PIXEL_FORMAT;
  private encodings: number[] = [];
  private zlib = new ZlibRectEncoder();
  private readonly differ = new FrameDiffer();
  private readonly tracker: ScreenTracker;
  /** The last update left no known change unsent (it covered the whole screen). */
  private complete = false;
  /** The picture size the client knows about. */
  private clientWidth = 0;
  private clientHeight = 0;
  private pending: (Rect & { incremental: boolean }) | undefined;
  readonly stats: VncStats = { updates: 0, rects: {} };

  constructor(
    private readonly socket: Socket,
    private readonly source: FrameSource,
    private readonly options: VncConnectionOptions,
  ) {
    this.tracker = new ScreenTracker(source);
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.receive(chunk));
    socket.on("error", () => this.close());
    socket.on("close", () => this.close());
    socket.write("RFB 003.008\n");
  }

  get waiting(): boolean {
    return this.pending !== undefined;
  }

  /** Answers a pending update request if the picture changed. Called by the server's poll timer. */
  service(): void {
    if (this.phase !== "normal" || !this.pending) return;
    this.guard(() => this.answer());
  }

  close(reason?: string): void {
    if (this.phase === "closed") return;
    this.phase = "closed";
    if (reason) this.options.onError(`${this.options.name}: closing connection: ${reason}`);
    this.tracker.close();
    this.socket.destroy();
    this.options.onClose();
  }

  private guard(work: () => void): void {
    try {
      work();
    } catch (e) {
      this.close(e instanceof RfbProtocolError ? e.message : `internal error: ${(e as Error).message}`);
    }
  }

  private receive(chunk: Buffer): void {
    this.input = this.input.length ? Buffer.concat([this.input, chunk]) : chunk;
    this.guard(() => {
      while (this.phase !== "closed" && this.step()) {}
    });
  }

  /** Consumes one unit of input; false when more bytes are needed. */
  private step(): boolean {
    switch (this.phase) {
      case "version":
        return this.takeVersion();
      case "security":
        return this.takeSecurity();
      case "init":
        return this.takeClientInit();
      case "normal": {
        const parsed = parseClientMessage(this.input);
        if (!parsed) return false;
        this.input = this.input.subarray(parsed.length);
        this.handle(parsed.message);
        return true;
      }
      case "closed":
        return false;
    }
  }

  private takeVersion(): boolean {
    if (this.input.length < 12) return false;
    const text = this.input.toString("latin1", 0, 12);
    this.input = this.input.subarray(12);
    const m = /^RFB 003\.(\d{3})\n$/.exec(text);
    if (!m) throw new RfbProtocolError(`bad protocol version ${JSON.stringify(text)}`);
    const minor = Number(m[1]);
    if (minor < 3) throw new RfbProtocolError(`unsupported protocol version 3.${minor}`);
    this.minor = minor >= 8 ? 8 : minor >= 7 ? 7 : 3;
    if (this.minor === 3) {
      // 3.3: the server decides; 1 = None.
      this.socket.write(Buffer.from([0, 0, 0, 1]));
      this.phase = "init";
    } else {
      this.socket.write(Buffer.from([1, 1]));
      this.phase = "security";
    }
    return true;
  }

  private takeSecurity(): boolean {
    if (this.input.length < 1) return false;
    const choice = this.input[0]!;
    this.input = this.input.subarray(1);
    if (choice !== 1) {
      if (this.minor === 8) {
        const reason = Buffer.from("only security type None is offered");
        const msg = Buffer.alloc(8);
        msg.writeUInt32BE(1, 0);
        msg.writeUInt32BE(reason.length, 4);
        this.socket.write(Buffer.concat([msg, reason]));
      }
      throw new RfbProtocolError(`client chose security type ${choice}`);
    }
    if (this.minor === 8) this.socket.write(Buffer.from([0, 0, 0, 0]));
    this.phase = "init";
    return true;
  }

  private takeClientInit(): boolean {
    if (this.input.length < 1) return false;
    this.input = this.input.subarray(1); // shared flag: every client shares the one screen anyway
    const frame = this.source.scanout ?? NO_SIGNAL;
    this.clientWidth = frame.width;
    this.clientHeight = frame.height;
    const name = Buffer.from(this.options.name, "utf8");
    const init = Buffer.alloc(24);
    init.writeUInt16BE(frame.width, 0);
    init.writeUInt16BE(frame.height, 2);
    writePixelFormat(SERVER_PIXEL_FORMAT, init, 4);
    init.writeUInt32BE(name.length, 20);
    this.socket.write(Buffer.concat([init, name]));
    this.phase = "normal";
    return true;
  }

  private handle(message: ClientMessage): void {
    switch (message.type) {
      case "setPixelFormat":
        // Everything the client holds is in the old format: the next update repaints the whole screen.
        this.format = message.format;
        this.differ.reset();
        this.complete = false;
        break;
      case "setEncodings":
        this.encodings = message.encodings;
        break;
      case "updateRequest":
        this.pending = message;
        this.answer();
        break;
      case "key":
        this.source.key(message.keysym, message.down);
        break;
      case "pointer":
      case "cutText":
        break; // no pointer device or clipboard in the guest to forward to
    }
  }

  private get pixelEncoding(): number {
    // The first encoding the client lists that we implement, as RFB prescribes; Raw is always allowed.
    return this.encodings.find((e) => e === Encoding.Raw || e === Encoding.Zlib) ?? Encoding.Raw;
  }

  /** Sends what the pending request asks for, or leaves it pending when an incremental request finds no change. */
  private answer(): void {
    const request = this.pending!;
    const change = this.tracker.update();
    const frame = this.tracker.frame;
    const resize = (frame.width !== this.clientWidth || frame.height !== this.clientHeight) && this.encodings.includes(Encoding.DesktopSize);
    if (resize) {
      this.clientWidth = frame.width;
      this.clientHeight = frame.height;
      this.differ.reset();
    }
    const bounds = { x: 0, y: 0, width: Math.min(frame.width, this.clientWidth), height: Math.min(frame.height, this.clientHeight) };
    const wanted = intersect(request, bounds);
    const whole = !!wanted && wanted.width === frame.width && wanted.height === frame.height;
    // Nothing written since an update that left nothing unsent: keep waiting without comparing anything.
    if (!resize && request.incremental && !change && this.complete) return;
    // The written rows narrow the comparison only when everything before them was sent.
    const rows = this.complete ? change?.rows : undefined;
    const rects: Rect[] = [];
    if (resize) rects.push(bounds);
    else if (wanted && !request.incremental) rects.push(wanted);
    else if (wanted) {
      for (const r of this.differ.changes(frame, rows)) {
        const c = intersect(r, wanted);
        if (c) rects.push(c);
      }
    }
    if (!resize && request.incremental && rects.length === 0) {
      this.complete ||= whole;
      return; // nothing new: stay pending
    }
    this.pending = undefined;
    this.complete = whole || resize;
    this.send(frame, rects, resize);
  }

  private send(frame: RgbaFrame, rects: Rect[], resize: boolean): void {
    const parts: Buffer[] = [];
    const head = Buffer.alloc(4);
    head[0] = 0; // FramebufferUpdate
    head.writeUInt16BE(rects.length + (resize ? 1 : 0), 2);
    parts.push(head);
    if (resize) {
      parts.push(rectHeader(0, 0, frame.width, frame.height, Encoding.DesktopSize));
      this.count(Encoding.DesktopSize);
    }
    const encoding = this.pixelEncoding;
    for (const r of rects) {
      const pixels = encodePixels(frame, r, this.format);
      parts.push(rectHeader(r.x, r.y, r.width, r.height, encoding));
      parts.push(encoding === Encoding.Zlib ? this.zlib.encode(pixels) : pixels);
      this.differ.markSent(frame, r);
      this.count(encoding);
    }
    this.stats.updates++;
    this.socket.write(Buffer.concat(parts));
  }

  private count(encoding: number): void {
    const name = ENCODING_NAMES[encoding] ?? String(encoding);
    this.stats.rects[name] = (this.stats.rects[name] ?? 0) + 1;
  }
}

function intersect(a: Rect, b: Rect): Rect | undefined {
  const x = Math.max(a.x, b.x);
  const y = Math.max(a.y, b.y);
  const w = Math.min(a.x + a.width, b.x + b.width) - x;
  const h = Math.min(a.y + a.height, b.y + b.height) - y;
  return w > 0 && h > 0 ? { x, y, width: w, height: h } : undefined;
}
