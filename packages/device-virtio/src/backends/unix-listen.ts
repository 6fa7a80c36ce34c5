import { lstat, unlink } from "node:fs/promises";
import { connect, type Server } from "node:net";
import { ConfigurationError } from "@vmm/core";

const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

function listenOnce(server: Server, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once("error", onError);
    server.listen(path, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** Whether a process accepts connections on the socket at `path`; only ECONNREFUSED says nobody does. */
function probe(path: string): Promise<"live" | "stale" | "gone" | NodeJS.ErrnoException> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => {
      socket.destroy();
      resolve("live");
    });
    socket.once("error", (e: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve(e.code === "ECONNREFUSED" ? "stale" : e.code === "ENOENT" ? "gone" : e);
    });
  });
}

/** What occupies `path`, in words, when it is not a socket. */
function kind(stats: Awaited<ReturnType<typeof lstat>>): string {
  if (stats.isDirectory()) return "a directory";
  if (stats.isSymbolicLink()) return "a symbolic link";
  if (stats.isFile()) return "a regular file";
  return "not a socket";
}

/**
 * Listens on a Unix socket path. Only a stale socket (one that refuses connections: its VMM is gone) is removed
 * and replaced; a file, a directory, a link or a socket a live process accepts on is left alone and reported as
 * a ConfigurationError naming the path. Shared by every backend that listens (console, virtio-net).
 */
export async function listenUnix(server: Server, path: string): Promise<void> {
  const fail = (why: string, cause?: unknown): never => {
    throw new ConfigurationError(`cannot listen on ${path}: ${why}`, cause === undefined ? undefined : { cause });
  };
  try {
    return await listenOnce(server, path);
  } catch (e) {
    if (code(e) !== "EADDRINUSE") fail((e as Error).message, e);
  }
  let stats;
  try {
    stats = await lstat(path);
  } catch (e) {
    if (code(e) !== "ENOENT") fail((e as Error).message, e);
  }
  if (stats && !stats.isSocket()) fail(`${kind(stats)} is in the way (only a stale socket is replaced); remove it or choose another path`);
  if (stats) {
    const state = await probe(path);
    if (state === "live") fail("another process is listening on this socket (is another VMM using it?)");
    if (typeof state === "object") fail(`cannot tell whether the socket there is stale (${state.code ?? state.message})`, state);
    // A socket that refuses connections was left behind by a process that died: replace it.
    if (state === "stale") {
      try {
        await unlink(path);
      } catch (e) {
        if (code(e) !== "ENOENT") fail(`cannot remove the stale socket: ${(e as Error).message}`, e);
      }
    }
  }
  await listenOnce(server, path).catch((e: unknown) => fail((e as Error).message, e));
}
