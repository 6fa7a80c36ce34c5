import { HEADER_SIZE } from "./constants.js";
import { FramingError } from "./errors.js";
import { decodeHeader, type MessageHeader } from "./header.js";

/** One message cut from the stream: its header, the bytes after it, and the fds that came with it. */
export interface RawMessage {
  readonly header: MessageHeader;
  readonly payload: Uint8Array;
  readonly fds: number[];
}

/**
 * Cuts a SOCK_STREAM byte stream into messages by their header's size. Fds (SCM_RIGHTS) arrive attached to a
 * chunk that ends with the last byte of the send that carried them, and a sender attaches them to the first byte of
 * a message; so the fds of a chunk belong to the last message that starts before the chunk's end (the message in
 * progress when the chunk starts none).
 */
export class FrameDecoder {
  private buffer = new Uint8Array(4096);
  /** buffer[start, end) holds bytes not yet handed out; buffer[start] is the stream offset `base`. */
  private start = 0;
  private end = 0;
  private base = 0;
  /** Fds waiting for their message, by the stream offset where that message starts. */
  private readonly attached = new Map<number, number[]>();

  constructor(private readonly maxMessageSize: number) {}

  /** Appends a chunk read from the socket, with the fds that came with it. */
  push(chunk: Uint8Array, fds: readonly number[] = []): void {
    this.reserve(chunk.length);
    this.buffer.set(chunk, this.end);
    this.end += chunk.length;
    if (fds.length > 0) {
      const owner = this.lastStartBefore(this.base + this.buffered);
      const list = this.attached.get(owner) ?? [];
      list.push(...fds);
      this.attached.set(owner, list);
    }
  }

  /** The next complete message, or undefined until more bytes arrive. Throws FramingError on an impossible size. */
  next(): RawMessage | undefined {
    if (this.buffered < HEADER_SIZE) return undefined;
    const header = decodeHeader(this.buffer.subarray(this.start, this.start + HEADER_SIZE));
    this.checkSize(header.size);
    if (this.buffered < header.size) return undefined;
    const payload = this.buffer.slice(this.start + HEADER_SIZE, this.start + header.size);
    const fds = this.attached.get(this.base) ?? [];
    this.attached.delete(this.base);
    this.start += header.size;
    this.base += header.size;
    return { header, payload, fds };
  }

  /** Fds received but not yet handed out with a message (to close them when the connection ends). */
  takeUnclaimedFds(): number[] {
    const fds = [...this.attached.values()].flat();
    this.attached.clear();
    return fds;
  }

  /** Bytes buffered that do not make a whole message yet. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** The stream offset of the last message start before `end`, walking the headers buffered. */
  private lastStartBefore(end: number): number {
    let start = this.base;
    for (;;) {
      const at = this.start + start - this.base;
      if (at + HEADER_SIZE > this.end) return start;
      const size = decodeHeader(this.buffer.subarray(at, at + HEADER_SIZE)).size;
      // An impossible size ends the walk here; next() reports it.
      if (size < HEADER_SIZE || size > this.maxMessageSize) return start;
      if (start + size >= end) return start;
      start += size;
    }
  }

  private checkSize(size: number): void {
    if (size < HEADER_SIZE) throw new FramingError(`message size ${size} is smaller than the ${HEADER_SIZE}-byte header`);
    if (size > this.maxMessageSize) throw new FramingError(`message size ${size} exceeds the limit of ${this.maxMessageSize} bytes`);
  }

  /** Room for `extra` more bytes: the consumed front is dropped (once per chunk, not per message), then it grows. */
  private reserve(extra: number): void {
    if (this.start > 0) {
      this.buffer.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    if (this.end + extra <= this.buffer.length) return;
    let size = this.buffer.length;
    while (size < this.end + extra) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.buffer.subarray(0, this.end));
    this.buffer = bigger;
  }
}
