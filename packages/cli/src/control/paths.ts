import { lstat, mkdir, unlink } from "node:fs/promises";
import { connect } from "node:net";
import { homedir } from "node:os";
import path from "node:path";
import { ConfigurationError } from "@vmm/core";
import { UsageError } from "../errors.js";

/** A control socket's file name: the VM's name and this suffix. */
export const SOCKET_SUFFIX = ".sock";

/** A UNIX socket path is at most 107 bytes on Linux (sun_path is 108 with its NUL). */
const MAX_SOCKET_PATH = 107;

/** Where the control sockets live: $XDG_RUNTIME_DIR/vmm, or ~/.vmm when XDG_RUNTIME_DIR is unset or empty. */
export function controlDir(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  return runtime ? path.join(runtime, "vmm") : path.join(env.HOME || homedir(), ".vmm");
}

/** A VM name that can be a socket file name: no slash, no NUL, not `.`/`..`-like (a leading dot), not empty. */
export function checkVmName(name: string): void {
  if (!name || name.includes("/") || name.includes("\0") || name.startsWith(".")) {
    throw new UsageError(`VM name '${name}' cannot name a control socket: use a name without '/', and not starting with '.'`);
  }
}

/** The control socket of the VM `name` in `dir`. */
export function socketPath(dir: string, name: string): string {
  checkVmName(name);
  const file = path.join(dir, name + SOCKET_SUFFIX);
  if (Buffer.byteLength(file) > MAX_SOCKET_PATH) {
    throw new ConfigurationError(`control socket path '${file}' is longer than ${MAX_SOCKET_PATH} bytes; use a shorter --name or XDG_RUNTIME_DIR`);
  }
  return file;
}

/** The control socket's directory cannot be created (no writable HOME or XDG_RUNTIME_DIR): a VM runs without one. */
export class ControlDirUnavailable extends ConfigurationError {}

/**
 * Creates the socket directory (mode 0700) when missing; an existing one must be a directory of this user that
 * nobody else can enter, else it is refused naming it (another user could replace sockets in it).
 */
export async function prepareControlDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new ControlDirUnavailable(`cannot create the control socket directory '${dir}' (${code}); set XDG_RUNTIME_DIR to a directory of yours`, { cause: error });
  }
  const info = await lstat(dir);
  if (!info.isDirectory()) throw new ConfigurationError(`control socket directory '${dir}' is not a directory`);
  if (typeof process.getuid === "function" && info.uid !== process.getuid()) {
    throw new ConfigurationError(`control socket directory '${dir}' belongs to another user (uid ${info.uid})`);
  }
  if ((info.mode & 0o077) !== 0) {
    throw new ConfigurationError(`control socket directory '${dir}' is accessible to other users (mode ${(info.mode & 0o777).toString(8)}); chmod 700 it`);
  }
}

/**
 * What is at a socket path: nothing, a socket a process answers on (`live`), a socket nobody listens on (`stale`:
 * its VM died), or something that is not a socket (never touched).
 */
export type SocketState = "absent" | "live" | "stale" | "not-socket";

export async function inspectSocket(file: string, timeoutMs = 2000): Promise<SocketState> {
  try {
    if (!(await lstat(file)).isSocket()) return "not-socket";
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return "absent";
    throw error;
  }
  return new Promise<SocketState>((resolve, reject) => {
    const socket = connect(file);
    // A process that accepted but is too busy to answer still holds the socket: it is live.
    const timer = setTimeout(() => done("live"), timeoutMs);
    const done = (state: SocketState) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(state);
    };
    socket.once("connect", () => done("live"));
    socket.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNREFUSED") return done("stale");
      if (error.code === "ENOENT") return done("absent");
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Removes a stale socket, checking again just before that it is still a socket (never anything else). */
export async function removeStaleSocket(file: string): Promise<boolean> {
  try {
    if (!(await lstat(file)).isSocket()) return false;
    await unlink(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}
