import { Errno } from "./constants.js";

/** A request the server refuses: the session answers it with an error reply carrying `errno`. */
export class ProtocolError extends Error {
  override name = "ProtocolError";
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

/** Shorthand for the most common refusal: a malformed or out-of-range request. */
export function invalid(message: string): ProtocolError {
  return new ProtocolError(Errno.EINVAL, message);
}

/**
 * The byte stream cannot be framed any more (a header with an impossible size): the connection is closed, since
 * the next message's start is unknown.
 */
export class FramingError extends Error {
  override name = "FramingError";
}
