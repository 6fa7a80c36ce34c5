import { closeSync } from "node:fs";
import { native } from "./native.js";
import { type FdWatch, watchReadable } from "./watch.js";

export interface TapOptions {
  /**
   * Open with IFF_VNET_HDR: every frame read or written is preceded by a virtio_net_hdr of `vnetHdrSize`
   * bytes (TUNSETVNETHDRSZ). Default false: plain Ethernet frames.
   */
  vnetHdr?: boolean;
  /** Header size with `vnetHdr` (10, or 12 with num_buffers); default 12. */
  vnetHdrSize?: number;
  /** The clone device; default "/dev/net/tun". */
  device?: string;
}

/** Linux IFNAMSIZ: interface names are at most 15 bytes. */
const MAX_IFNAME = 15;

/**
 * Attaches to the tap interface `name` (creating it when it does not exist, which needs CAP_NET_ADMIN unless
 * it is a persistent tap owned by this user), or to a new kernel-named tap when `name` is "". The fd is
 * non-blocking and close-on-exec, IFF_NO_PI (no packet-info prefix). Failures throw `HostIoError` with the
 * errno name: ENOENT (no /dev/net/tun), EACCES/EPERM (no permission), EBUSY (the tap is attached elsewhere),
 * EINVAL (the name belongs to an interface that is not a tap).
 */
export function openTap(name: string, options: TapOptions = {}): Tap {
  if (typeof name !== "string" || Buffer.byteLength(name) > MAX_IFNAME || /[\0/\s]/.test(name)) {
    throw new RangeError(`tap interface name '${String(name)}' must be at most ${MAX_IFNAME} bytes without '/', spaces or NUL`);
  }
  const hdr = options.vnetHdr ? (options.vnetHdrSize ?? 12) : 0;
  if (options.vnetHdr && !(Number.isInteger(hdr) && hdr >= 10 && hdr <= 64)) {
    throw new RangeError(`vnetHdrSize must be an integer from 10 to 64, not ${String(options.vnetHdrSize)}`);
  }
  const { fd, name: actual } = native().tapOpen(options.device ?? "/dev/net/tun", name, hdr);
  return new Tap(fd, actual, hdr);
}

/**
 * An open tap queue. Frames move with one non-blocking system call each: `read` returns one frame's length
 * (-1 when none is queued), `write` sends one frame. `onReadable` watches the fd with a uv_poll on the main
 * loop and calls back, without reading, while frames are queued; `pause()` stops watching so frames stay
 * queued in the kernel (back-pressure) until `resume()`.
 */
export class Tap {
  private poll: FdWatch | undefined;
  private closed = false;

  /** @internal use openTap() */
  constructor(
    readonly fd: number,
    /** The interface name the kernel attached (its choice when "" was asked for). */
    readonly name: string,
    /** virtio_net_hdr bytes before each frame; 0 without IFF_VNET_HDR. */
    readonly vnetHdrSize: number,
  ) {}

  /** Calls `cb` from the event loop while frames are waiting (level-triggered). Replaces any previous callback. */
  onReadable(cb: () => void): void {
    this.assertOpen();
    this.poll?.close();
    this.poll = watchReadable(this.fd, cb);
  }

  offReadable(): void {
    this.poll?.close();
    this.poll = undefined;
  }

  /** Stops the readable callbacks; the kernel keeps queueing frames (up to the interface's txqueuelen). */
  pause(): void {
    this.poll?.pause();
  }

  resume(): void {
    this.poll?.resume();
  }

  /** The watch keeps the event loop alive unless unref'd. */
  unref(): void {
    this.poll?.unref();
  }

  ref(): void {
    this.poll?.ref();
  }

  /**
   * Reads one frame into `buffer`: its length, or -1 when no frame is queued. A frame longer than the buffer
   * is truncated to `buffer.length` (size the buffer one byte above the largest frame to detect that).
   */
  read(buffer: Uint8Array): number {
    this.assertOpen();
    return native().tapRead(this.fd, buffer);
  }

  /** Writes one frame: the bytes written, or -1 when the kernel cannot take it now. Throws HostIoError (e.g. EIO while the interface is down). */
  write(frame: Uint8Array): number {
    this.assertOpen();
    return native().tapWrite(this.fd, frame);
  }

  /** Stops watching and closes the fd; a non-persistent tap disappears with it. */
  close(): void {
    if (this.closed) return;
    this.offReadable();
    closeSync(this.fd);
    this.closed = true;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`tap ${this.name} is closed`);
  }
}

/**
 * Reads one message (a tap's frame, a unix datagram) from the non-blocking `fd` into `buffer`: its length, or -1
 * when none is queued, without an exception (a data-plane thread reads until -1 this way). A longer message is
 * truncated to `buffer.length`. Other failures throw HostIoError.
 */
export function readMessage(fd: number, buffer: Uint8Array): number {
  return native().readMessage(fd, buffer);
}

/** Writes `bytes` as one message to the non-blocking `fd`: the bytes written, or -1 when it cannot take it now. */
export function writeMessage(fd: number, bytes: Uint8Array): number {
  return native().writeMessage(fd, bytes);
}
