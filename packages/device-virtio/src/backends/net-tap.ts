import { ConfigurationError, type Logger } from "@vmm/core";
import { HostIoError, openTap, type Tap } from "@vmm/host-io";
import { FrameReader, warnSometimes } from "./frame-fd.js";
import { type FrameFd, MAX_FRAME, type NetBackend } from "./net-socket.js";

export interface TapNetOptions {
  logger?: Logger;
  /** Prefix for messages (the device's name). */
  label?: string;
  /** The clone device; default /dev/net/tun. */
  device?: string;
}

/** Why an attach failed, in words an operator can act on. */
export function tapAttachHint(err: HostIoError, ifname: string): string {
  switch (err.errno) {
    case "ENOENT":
      return err.syscall.startsWith("open") ? "the host has no tun driver (modprobe tun)" : "no such device";
    case "EACCES":
    case "EPERM":
      return `creating or attaching a tap needs CAP_NET_ADMIN; or let an administrator create a persistent tap for this user (ip tuntap add dev ${ifname || "NAME"} mode tap user USER)`;
    case "EBUSY":
      return "another process (or another device of this VM) is attached to it";
    case "EINVAL":
      return `'${ifname}' exists and is not a tap interface`;
    default:
      return err.message;
  }
}

/**
 * Ethernet frames through a host tap interface (IFF_TAP | IFF_NO_PI, no virtio_net_hdr: the device strips
 * and prepends the header, as for the socket backend). Frames are read when the tap's fd is readable
 * (FrameReader); `pause()` (the guest has no receive buffers) stops reading so frames wait in the kernel's queue
 * instead of in memory. Oversized frames and failed writes are dropped and counted.
 */
export class TapNetBackend implements NetBackend {
  /** Frames sent to the host. */
  txFrames = 0;
  /** Frames the host did not take (interface down, queue full) or that were too large to send. */
  txDropped = 0;
  private readonly reader: FrameReader;

  private constructor(
    private readonly tap: Tap,
    private readonly logger: Logger | undefined,
    private readonly label: string,
  ) {
    this.reader = new FrameReader(tap.fd, { logger, label, oversizedHint: "; lower the interface's MTU" });
  }

  /** Attaches to (or creates) the tap `ifname`; "" lets the kernel pick a name. Throws ConfigurationError. */
  static open(ifname: string, options: TapNetOptions = {}): TapNetBackend {
    const label = `${options.label ? `${options.label}: ` : ""}tap ${ifname || "(kernel-named)"}`;
    let tap: Tap;
    try {
      tap = openTap(ifname, { device: options.device });
    } catch (e) {
      if (e instanceof HostIoError) {
        throw new ConfigurationError(`${label}: cannot attach: ${e.syscall} failed with ${e.errno}: ${tapAttachHint(e, ifname)}`, { cause: e });
      }
      throw new ConfigurationError(`${label}: cannot attach: ${(e as Error).message}`, { cause: e });
    }
    return new TapNetBackend(tap, options.logger, `${options.label ? `${options.label}: ` : ""}tap ${tap.name}`);
  }

  /** The interface name (the kernel's choice when none was given). */
  get ifname(): string {
    return this.tap.name;
  }

  /** Frames delivered to the device. */
  get rxFrames(): number {
    return this.reader.rxFrames;
  }

  /** Frames read from the tap that were larger than MAX_FRAME. */
  get rxOversized(): number {
    return this.reader.rxOversized;
  }

  /** The tap's fd (IFF_TAP, IFF_NO_PI: one frame per read and write); undefined once closed. */
  frameFd(): FrameFd | undefined {
    return this.tap.isClosed ? undefined : { fd: this.tap.fd };
  }

  counters(): Readonly<Record<string, number>> {
    return { backendRxOversized: this.rxOversized, backendTxDropped: this.txDropped };
  }

  open(receive: (frame: Uint8Array) => void): void {
    this.reader.start(receive);
  }

  send(frame: Uint8Array): void {
    if (frame.length === 0 || frame.length > MAX_FRAME) {
      this.dropTx(`a ${frame.length}-byte frame`);
      return;
    }
    try {
      if (this.tap.write(frame) < 0) this.dropTx("the host queue is full");
      else this.txFrames++;
    } catch (e) {
      this.dropTx((e as Error).message); // EIO while the interface is down: a cable that is not plugged in
    }
  }

  pause(): void {
    this.reader.pause();
  }

  resume(): void {
    this.reader.resume();
  }

  async close(): Promise<void> {
    this.reader.close();
    this.tap.close();
  }

  private dropTx(why: string): void {
    warnSometimes(this.logger, ++this.txDropped, `${this.label}: dropped a transmitted frame: ${why}`);
  }
}
