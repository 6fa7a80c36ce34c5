import { HEADER_SIZE, MessageFlags } from "./constants.js";

/** The 16-byte message header (little-endian, the host's order on x86). */
export interface MessageHeader {
  /** Echoed in the reply; the sender's to choose. */
  readonly id: number;
  readonly command: number;
  /** Bytes of the whole message, header included. */
  readonly size: number;
  readonly flags: number;
  /** An errno in an error reply; reserved in a command. */
  readonly error: number;
}

export function decodeHeader(bytes: Uint8Array): MessageHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  return {
    id: view.getUint16(0, true),
    command: view.getUint16(2, true),
    size: view.getUint32(4, true),
    flags: view.getUint32(8, true),
    error: view.getUint32(12, true),
  };
}

/** A whole message: the header (its size computed) followed by `payload`. */
export function encodeMessage(header: Omit<MessageHeader, "size">, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, header.id & 0xffff, true);
  view.setUint16(2, header.command & 0xffff, true);
  view.setUint32(4, out.length, true);
  view.setUint32(8, header.flags >>> 0, true);
  view.setUint32(12, header.error >>> 0, true);
  out.set(payload, HEADER_SIZE);
  return out;
}

export function messageType(flags: number): number {
  return flags & MessageFlags.TYPE_MASK;
}

export function isReply(header: MessageHeader): boolean {
  return messageType(header.flags) === MessageFlags.TYPE_REPLY;
}

/** The reply to `request`: same id and command, type reply. */
export function encodeReply(request: MessageHeader, payload?: Uint8Array): Uint8Array {
  return encodeMessage({ id: request.id, command: request.command, flags: MessageFlags.TYPE_REPLY, error: 0 }, payload);
}

/** An error reply to `request`: the header alone, with the error flag and the errno. */
export function encodeErrorReply(request: MessageHeader, errno: number): Uint8Array {
  return encodeMessage({ id: request.id, command: request.command, flags: MessageFlags.TYPE_REPLY | MessageFlags.ERROR, error: errno });
}
