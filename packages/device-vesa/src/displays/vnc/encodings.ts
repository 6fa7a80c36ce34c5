import { constants, deflateRawSync } from "node:zlib";

/** RFB encoding numbers this server knows. */
export const Encoding = {
  Raw: 0,
  Zlib: 6,
  /** Pseudo-encoding: the client accepts framebuffer size changes. */
  DesktopSize: -223,
} as const;

/** A zlib stream header (deflate, 32 KiB window, default compression) that the client's inflater expects first. */
const ZLIB_HEADER = Buffer.from([0x78, 0x9c]);

/**
 * The Zlib encoding: Raw pixels through one zlib stream per connection. Each rectangle ends with a sync flush so
 * the client can inflate it completely; every rectangle is compressed on its own (no history between them),
 * which keeps the encoder synchronous while producing a valid continuation of the same stream.
 */
export class ZlibRectEncoder {
  private started = false;

  constructor(private readonly level = 6) {}

  /** The rectangle body: a 32-bit length, then the compressed bytes. */
  encode(raw: Buffer): Buffer {
    const body = deflateRawSync(raw, { level: this.level, finishFlush: constants.Z_SYNC_FLUSH });
    const parts = this.started ? [body] : [ZLIB_HEADER, body];
    this.started = true;
    const length = parts.reduce((n, p) => n + p.length, 0);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(length);
    return Buffer.concat([head, ...parts]);
  }
}

/** A rectangle header: position, size, encoding. */
export function rectHeader(x: number, y: number, width: number, height: number, encoding: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(x, 0);
  h.writeUInt16BE(y, 2);
  h.writeUInt16BE(width, 4);
  h.writeUInt16BE(height, 6);
  h.writeInt32BE(encoding, 8);
  return h;
}
