// Framing of the stream socket: bytes arrive in arbitrary pieces, so they collect here until a whole message (its
// header's msg_size) is in; fds that came with a piece belong to the message holding that piece's last byte (the
// kernel ends a recvmsg that returns fds with the last byte of the send that carried them).
import { closeSync } from "node:fs";
import { MAX_FDS_PER_MESSAGE, recvFds } from "@vmm/host-io";
import { HEADER_SIZE, VfioUserFlags, VfioUserHeader } from "./protocol.js";

export interface ReceivedMessage {
  readonly id: number;
  readonly command: number;
  /** Header flags: VfioUserFlags. */
  readonly flags: number;
  readonly errorNo: number;
  /** A copy: it stays valid after the buffer moves on. */
  readonly payload: Uint8Array;
  /** Owned by whoever takes the message: used or closed. */
  readonly fds: number[];
}

/** Bytes that cannot be vfio-user messages: the stream cannot be trusted (or resynchronised) after them. */
export class FramingError extends Error {}

export type ReceiveResult = "data" | "again" | "eof" | "full";

const READ_CHUNK = 64 * 1024;

export function closeFds(fds: readonly number[]): void {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // already gone: nothing to release
    }
  }
}

export class ReceiveBuffer {
  private buffer = new Uint8Array(READ_CHUNK);
  private start = 0;
  private end = 0;
  /** Stream position of buffer[0]. */
  private base = 0;
  /** fds received with the piece whose last byte is at stream position `last`. */
  private fdGroups: { last: number; fds: number[] }[] = [];
  private readonly capacity: number;

  constructor(private readonly maxMessageSize: number) {
    this.capacity = maxMessageSize + READ_CHUNK;
  }

  /** Bytes received and not yet taken as messages. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** One recvmsg from `socket` (non-blocking). "full": nothing read, the buffer holds all it may. */
  receive(socket: number): ReceiveResult {
    const room = this.makeRoom();
    if (room === 0) return "full";
    const got = recvFds(socket, this.buffer.subarray(this.end, this.end + room), MAX_FDS_PER_MESSAGE);
    if (got === null) return "again";
    if (got.bytes === 0) {
      closeFds(got.fds);
      return "eof";
    }
    this.end += got.bytes;
    if (got.fds.length > 0) this.fdGroups.push({ last: this.base + this.end - 1, fds: got.fds });
    return "data";
  }

  /** The next whole message, or null until more bytes come. Throws FramingError for bytes no message can start with. */
  next(): ReceivedMessage | null {
    if (this.buffered < HEADER_SIZE) return null;
    const header = VfioUserHeader.decode(this.buffer, this.start);
    if (header.msg_size < HEADER_SIZE) throw new FramingError(`a message claims msg_size ${header.msg_size}, smaller than the ${HEADER_SIZE}-byte header`);
    if (header.msg_size > this.maxMessageSize) throw new FramingError(`a message claims msg_size ${header.msg_size}, above the ${this.maxMessageSize} bytes this client accepts`);
    const type = header.flags & VfioUserFlags.TYPE_MASK;
    if (type !== VfioUserFlags.TYPE_COMMAND && type !== VfioUserFlags.TYPE_REPLY) throw new FramingError(`a message has type ${type} (neither command nor reply)`);
    if (this.buffered < header.msg_size) return null;
    const messageStart = this.base + this.start;
    const messageEnd = messageStart + header.msg_size;
    const fds: number[] = [];
    while (this.fdGroups.length > 0 && this.fdGroups[0]!.last < messageEnd) {
      const group = this.fdGroups.shift()!;
      if (group.last >= messageStart) fds.push(...group.fds);
      else closeFds(group.fds);
    }
    const payload = this.buffer.slice(this.start + HEADER_SIZE, this.start + header.msg_size);
    this.start += header.msg_size;
    return { id: header.msg_id, command: header.command, flags: header.flags, errorNo: header.error_no, payload, fds };
  }

  /** Closes the fds of messages never taken. */
  discard(): void {
    for (const group of this.fdGroups) closeFds(group.fds);
    this.fdGroups = [];
    this.base += this.end;
    this.start = this.end = 0;
  }

  /** Room for the next read: moves pending bytes to the front or grows the buffer, up to the capacity. */
  private makeRoom(): number {
    if (this.start === this.end) {
      this.base += this.end;
      this.start = this.end = 0;
    }
    const wanted = Math.min(READ_CHUNK, this.capacity - this.buffered);
    if (wanted <= 0) return 0;
    if (this.buffer.length - this.end < wanted) {
      if (this.start > 0) {
        this.buffer.copyWithin(0, this.start, this.end);
        this.base += this.start;
        this.end -= this.start;
        this.start = 0;
      }
      if (this.buffer.length - this.end < wanted) {
        const grown = new Uint8Array(Math.min(this.capacity, Math.max(this.buffer.length * 2, this.end + wanted)));
        grown.set(this.buffer.subarray(0, this.end));
        this.buffer = grown;
      }
    }
    return Math.min(wanted, this.buffer.length - this.end);
  }
}
