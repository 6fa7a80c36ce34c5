import { type PixelFormat, readPixelFormat } from "./pixel-format.js";

/** A client broke the protocol; the connection is closed, nothing else is affected. */
export class RfbProtocolError extends Error {}

export type ClientMessage =
  | { type: "setPixelFormat"; format: PixelFormat }
  | { type: "setEncodings"; encodings: number[] }
  | { type: "updateRequest"; incremental: boolean; x: number; y: number; width: number; height: number }
  | { type: "key"; down: boolean; keysym: number }
  | { type: "pointer"; buttons: number; x: number; y: number }
  | { type: "cutText"; text: string };

const MAX_ENCODINGS = 1024;
const MAX_CUT_TEXT = 1 << 20;

/** Sizes of the fixed-length client messages, by message type. */
const FIXED: Record<number, number> = { 0: 20, 3: 10, 4: 8, 5: 6 };

/**
 * Parses one client-to-server message from the front of `buf`: the message and how many bytes it used, or
 * undefined when more bytes are needed. Throws RfbProtocolError for anything malformed or unknown.
 */
export function parseClientMessage(buf: Buffer): { message: ClientMessage; length: number } | undefined {
  if (buf.length < 1) return undefined;
  const type = buf[0]!;
  const fixed = FIXED[type];
  if (fixed !== undefined && buf.length < fixed) return undefined;
  switch (type) {
    case 0: {
      const format = readPixelFormat(buf, 4);
      if (typeof format === "string") throw new RfbProtocolError(`SetPixelFormat: ${format}`);
      return { message: { type: "setPixelFormat", format }, length: 20 };
    }
    case 2: {
      if (buf.length < 4) return undefined;
      const n = buf.readUInt16BE(2);
      if (n > MAX_ENCODINGS) throw new RfbProtocolError(`SetEncodings: ${n} encodings (at most ${MAX_ENCODINGS})`);
      if (buf.length < 4 + 4 * n) return undefined;
      const encodings = Array.from({ length: n }, (_, i) => buf.readInt32BE(4 + 4 * i));
      return { message: { type: "setEncodings", encodings }, length: 4 + 4 * n };
    }
    case 3:
      return {
        message: { type: "updateRequest", incremental: buf[1] !== 0, x: buf.readUInt16BE(2), y: buf.readUInt16BE(4), width: buf.readUInt16BE(6), height: buf.readUInt16BE(8) },
        length: 10,
      };
    case 4:
      return { message: { type: "key", down: buf[1] !== 0, keysym: buf.readUInt32BE(4) }, length: 8 };
    case 5:
      return { message: { type: "pointer", buttons: buf[1]!, x: buf.readUInt16BE(2), y: buf.readUInt16BE(4) }, length: 6 };
    case 6: {
      if (buf.length < 8) return undefined;
      const len = buf.readInt32BE(4);
      if (len < 0 || len > MAX_CUT_TEXT) throw new RfbProtocolError(`ClientCutText: length ${len} outside 0..${MAX_CUT_TEXT}`);
      if (buf.length < 8 + len) return undefined;
      return { message: { type: "cutText", text: buf.toString("latin1", 8, 8 + len) }, length: 8 + len };
    }
    default:
      throw new RfbProtocolError(`unknown client message type ${type}`);
  }
}
