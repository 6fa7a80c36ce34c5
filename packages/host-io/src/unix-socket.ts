import { native } from "./native.js";

export interface UnixSocketOptions {
  /** SOCK_SEQPACKET (message boundaries kept) instead of SOCK_STREAM (the default). */
  seqpacket?: boolean;
}

/** A connected pair of unix-domain sockets, both non-blocking and close-on-exec (socketpair(2)). Close with fs.closeSync. */
export function socketPair(options: UnixSocketOptions = {}): [number, number] {
  return native().socketPair(options.seqpacket ?? false);
}

/**
 * Connects a new non-blocking, close-on-exec unix-domain socket to the listener at `path` (a vfio-user device
 * process, say). A unix connect completes at once; a full backlog throws HostIoError EAGAIN, no listener
 * ECONNREFUSED, no such path ENOENT.
 */
export function unixConnect(path: string, options: UnixSocketOptions = {}): number {
  return native().unixConnect(path, options.seqpacket ?? false);
}

/** Most fds one message can carry (the kernel's SCM_MAX_FD). */
export const MAX_FDS_PER_MESSAGE = 253;

/**
 * Sends `data` on the unix socket `socket` with `fds` attached (sendmsg with SCM_RIGHTS): the receiver gets its
 * own fds for the same open files, so the sender may close its copies afterwards. Returns the bytes sent (a
 * stream socket may take fewer than `data.length`; the fds went with the first byte), or -1 when the socket
 * cannot take anything now (EAGAIN). `data` must not be empty when fds are sent. Other failures throw
 * HostIoError (EPIPE once the peer closed; EBADF for a bad fd in `fds`).
 */
export function sendFds(socket: number, data: Uint8Array, fds: readonly number[] = []): number {
  if (fds.length > 0 && data.length === 0) throw new RangeError("fds must travel with at least one byte of data");
  if (fds.length > MAX_FDS_PER_MESSAGE) throw new RangeError(`at most ${MAX_FDS_PER_MESSAGE} fds per message, not ${fds.length}`);
  return native().sendFds(socket, data, fds);
}

export interface ReceivedMessage {
  /** Bytes read into the buffer; 0 when the peer closed (end of stream). */
  bytes: number;
  /** The fds that came with these bytes, close-on-exec and owned by the caller (close them with fs.closeSync). */
  fds: number[];
}

/**
 * Reads from the unix socket `socket` into `buffer` with any attached fds (recvmsg, MSG_CMSG_CLOEXEC); null when
 * nothing is queued (EAGAIN). On a stream socket a read that returns fds ends with the last byte of the send that
 * carried them (it may start with earlier sends' bytes). A message with more than `maxFds` fds throws HostIoError EMSGSIZE
 * (the fds that did arrive are closed). On a seqpacket socket a message longer than `buffer` is truncated.
 */
export function recvFds(socket: number, buffer: Uint8Array, maxFds = 16): ReceivedMessage | null {
  if (!Number.isInteger(maxFds) || maxFds < 0 || maxFds > MAX_FDS_PER_MESSAGE) {
    throw new RangeError(`maxFds must be an integer from 0 to ${MAX_FDS_PER_MESSAGE}, not ${maxFds}`);
  }
  return native().recvFds(socket, buffer, maxFds);
}

/**
 * A new non-blocking, close-on-exec unix-domain socket listening at `path` (a vfio-user device process serves
 * this way). The socket file is created with mode 0600 (less the umask); `path` must not exist (EADDRINUSE):
 * nothing is ever replaced. Accept connections with `unixAccept`, watch it with `watchReadable`.
 */
export function unixListen(path: string, options: UnixSocketOptions = {}): number {
  return native().unixListen(path, options.seqpacket ?? false);
}

/** The next waiting connection on listener `fd`, non-blocking and close-on-exec; null when none waits. */
export function unixAccept(fd: number): number | null {
  return native().unixAccept(fd);
}

/**
 * Blocks the calling thread until `fd` is readable or hung up (true) or `timeoutMs` passed (false; -1 waits for
 * ever). For synchronous request/reply protocols answered from inside a vCPU exit, where the event loop cannot run.
 */
export function waitReadable(fd: number, timeoutMs: number): boolean {
  checkTimeout(timeoutMs);
  return native().waitReadable(fd, timeoutMs);
}

/** Blocks the calling thread until `fd` can take a write (or hung up: true) or `timeoutMs` passed (false; -1 waits for ever). */
export function waitWritable(fd: number, timeoutMs: number): boolean {
  checkTimeout(timeoutMs);
  return native().waitWritable(fd, timeoutMs);
}

/**
 * A new non-blocking, close-on-exec unix-domain datagram socket bound to `path` (mode 0600 less the umask): each
 * datagram is one message. `path` must not exist (EADDRINUSE: nothing is ever replaced). Read and write it with
 * fs.readSync / fs.writeSync once `unixDgramConnect` set its peer; close it with fs.closeSync and remove `path`.
 */
export function unixDgramBind(path: string): number {
  return native().unixDgramBind(path);
}

/**
 * Sets datagram socket `fd`'s peer to the socket bound at `path`: writes go there and only its datagrams are
 * received. Throws HostIoError ENOENT (nothing at `path`) or ECONNREFUSED (a socket file nobody is bound to).
 */
export function unixDgramConnect(fd: number, path: string): void {
  native().unixDgramConnect(fd, path);
}

/** Most fds one `waitAnyReadable` watches. */
const MAX_WAIT_FDS = 64;

/**
 * Blocks the calling thread until one of `fds` is readable or hung up and returns its index (the first such), or
 * -1 once `timeoutMs` passed (-1 waits for ever). A data-plane thread waits on its doorbell and its host input.
 */
export function waitAnyReadable(fds: readonly number[], timeoutMs: number): number {
  checkTimeout(timeoutMs);
  if (fds.length === 0 || fds.length > MAX_WAIT_FDS || fds.some((fd) => !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff)) {
    throw new RangeError(`fds must be 1 to ${MAX_WAIT_FDS} file descriptors, not [${fds.join(", ")}]`);
  }
  return native().waitAnyReadable(fds, timeoutMs);
}

function checkTimeout(timeoutMs: number): void {
  if (!Number.isInteger(timeoutMs) || timeoutMs < -1 || timeoutMs > 0x7fffffff) {
    throw new RangeError(`timeoutMs must be an integer from -1 to ${0x7fffffff}, not ${timeoutMs}`);
  }
}
