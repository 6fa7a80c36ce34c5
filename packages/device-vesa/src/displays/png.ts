import { accessSync, constants, renameSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { deflateSync } from "node:zlib";
import type { RgbaFrame } from "../framebuffer.js";
import type { FrameSource } from "../screen.js";
import type { Display } from "./display.js";

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC polynomial), as PNG chunks use it. */
export function crc32(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** Encodes an RGBA picture as an 8-bit RGB PNG (the framebuffer has no alpha). */
export function encodePng(frame: RgbaFrame): Buffer {
  const { width, height, rgba } = frame;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace
  const raw = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0, o = 0; y < height; y++) {
    raw[o++] = 0; // filter: none
    for (let x = 0, i = y * width * 4; x < width; x++, i += 4) {
      raw[o++] = rgba[i]!;
      raw[o++] = rgba[i + 1]!;
      raw[o++] = rgba[i + 2]!;
    }
  }
  return Buffer.concat([SIGNATURE, chunk("IHDR", ihdr), chunk("IDAT", deflateSync(raw)), chunk("IEND", new Uint8Array(0))]);
}

/** Writes a PNG of the current picture to `path` (via a temporary file, so readers never see half a file). */
export function writeScreenshot(source: FrameSource, path: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, encodePng(source.capture()));
  renameSync(tmp, path);
}

/** `png:PATH`: a PNG of the picture, written on demand (screenshot) and when the VM stops. */
export class PngDisplay implements Display {
  readonly kind = "png";
  constructor(
    private readonly source: FrameSource,
    readonly path: string,
  ) {}

  get description(): string {
    return `png to ${this.path}`;
  }

  /** Writes the last picture if the process exits without a stop() (a VM that ends by exiting). */
  private readonly atExit = () => {
    try {
      this.screenshot();
    } catch (e) {
      process.stderr.write(`vmm: warning: png display: cannot write ${this.path}: ${(e as Error).message}\n`);
    }
  };

  async start(): Promise<void> {
    try {
      accessSync(dirname(resolve(this.path)), constants.W_OK);
    } catch {
      throw new Error(`png display: cannot write ${this.path}: its directory does not exist or is not writable`);
    }
    process.once("exit", this.atExit);
  }

  screenshot(): void {
    writeScreenshot(this.source, this.path);
  }

  async stop(): Promise<void> {
    process.off("exit", this.atExit);
    this.screenshot();
  }
}
