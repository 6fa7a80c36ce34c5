import { constants } from "node:os";
import { VmmError } from "@vmm/core";

const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, value]) => [value, name]));

/** "EINVAL", or "errno 4242" for a number this host has no name for. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** The server answered a command with an error reply. */
export class VfioUserCommandError extends VmmError {
  /** Symbolic ("EINVAL"); "" when the server gave no errno. */
  readonly errno: string;

  constructor(
    server: string,
    readonly command: string,
    readonly errnoNumber: number,
  ) {
    const errno = errnoNumber === 0 ? "" : errnoName(errnoNumber);
    super("EVFIOUSER", `${server}: ${command} failed: ${errnoNumber === 0 ? "error without an errno" : `${errno} (${errnoNumber})`}`);
    this.errno = errno;
  }
}

/** The server broke the protocol: a malformed reply, a refused negotiation. */
export class VfioUserProtocolError extends VmmError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("EVFIOUSERPROTO", message, options);
  }
}

/** No reply came within the client's timeout. */
export class VfioUserTimeoutError extends VmmError {
  constructor(
    server: string,
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super("ETIMEDOUT", `${server}: no reply to ${command} within ${timeoutMs} ms`);
  }
}
