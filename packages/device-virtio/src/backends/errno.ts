// The errno names the backends and the data-plane workers decide on.

/** A failed host call's errno name: a HostIoError's `errno`, a Node error's `code`; "" for anything else. */
export function errnoOf(e: unknown): string {
  const { code, errno } = (e ?? {}) as { code?: unknown; errno?: unknown };
  return typeof code === "string" ? code : typeof errno === "string" ? errno : "";
}

/** Errors that say a datagram peer is not there (yet, or any more): no reason to stop sending or reading. */
export const PEER_GONE: ReadonlySet<string> = new Set(["ECONNREFUSED", "ENOTCONN", "ECONNRESET", "ENOENT"]);
