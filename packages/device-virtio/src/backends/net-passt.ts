import { type ChildProcess, spawn } from "node:child_process";
import type { Socket } from "node:net";
import { ConfigurationError, type Logger } from "@vmm/core";
import { encodeFrame, FrameDecoder, MAX_FRAME, type NetBackend } from "./net-socket.js";

/** A port forward from the host to the guest: `HOST:GUEST/tcp` or `HOST:GUEST/udp` (`PORT/tcp` keeps the number). */
export interface PasstForward {
  host: number;
  guest: number;
  protocol: "tcp" | "udp";
}

export interface PasstOptions {
  /** Port forwards from the host to the guest. */
  forwards?: PasstForward[];
  /** IPv4 address, prefix length and gateway passt assigns (by default passt copies the host's). */
  address?: string;
  prefix?: number;
  gateway?: string;
  /** IPv6 as well as IPv4 (default true): passt answers NDP and DHCPv6 where the host has IPv6 routes. */
  ipv6?: boolean;
  /** The passt binary (default `passt` on PATH). */
  binary?: string;
  logger?: Logger;
  label?: string;
}

const PASST_PACKAGE_HINT = "install the Debian package passt (apt-get install passt)";

/** Parses `forward=` text: forwards separated by `+`, each `HOST:GUEST/tcp|udp` or `PORT/tcp|udp`. */
export function parsePasstForwards(text: string): PasstForward[] {
  return text
    .split("+")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((item) => {
      const m = /^(\d+)(?::(\d+))?\/(tcp|udp)$/.exec(item);
      const host = m ? Number(m[1]) : NaN;
      const guest = m ? Number(m[2] ?? m[1]) : NaN;
      if (!m || !(host >= 1 && host <= 65535) || !(guest >= 1 && guest <= 65535)) {
        throw new ConfigurationError(`forward '${item}': expected HOST:GUEST/tcp or HOST:GUEST/udp with ports 1-65535`);
      }
      return { host, guest, protocol: m[3] as "tcp" | "udp" };
    });
}

/** passt's command line: foreground, the frame socket on fd 3 (passt quits when it closes). */
export function passtArguments(options: PasstOptions): string[] {
  const args = ["--foreground", "--quiet", ...(options.ipv6 === false ? ["--ipv4-only"] : []), "--fd", "3"];
  if (options.address !== undefined) args.push("--address", options.address);
  if (options.prefix !== undefined) args.push("--netmask", String(options.prefix));
  if (options.gateway !== undefined) args.push("--gateway", options.gateway);
  const tcp = (options.forwards ?? []).filter((f) => f.protocol === "tcp");
  const udp = (options.forwards ?? []).filter((f) => f.protocol === "udp");
  args.push("--tcp-ports", tcp.length ? tcp.map((f) => `${f.host}:${f.guest}`).join(",") : "none");
  args.push("--udp-ports", udp.length ? udp.map((f) => `${f.host}:${f.guest}`).join(",") : "none");
  return args;
}

/** How long a freshly started passt must stay up before open() resolves; bad options make it exit sooner. */
const STARTUP_MS = 250;

/**
 * User-mode networking through passt: vmm starts passt with one end of a socketpair (libuv's stdio pipes are
 * Unix stream socketpairs) as `--fd 3` and exchanges length-prefixed frames with it (QEMU's stream framing).
 * passt quits when its end of the socket closes, so it never outlives vmm, even when vmm is killed; `close()`
 * also ends it. A passt that exits on its own is reported in one line with its last message.
 */
export class PasstNetBackend implements NetBackend {
  private receive: ((frame: Uint8Array) => void) | undefined;
  private closing = false;
  private lastMessage = "";
  private readonly exited: Promise<void>;
  private readonly decoder: FrameDecoder;
  /** Frames dropped because passt is gone or the frame is out of range. */
  dropped = 0;
  /** Set once passt has exited: its exit code or signal. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  private constructor(
    readonly child: ChildProcess,
    private readonly socket: Socket,
    private readonly logger: Logger | undefined,
    readonly label: string,
  ) {
    this.exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => {
        this.exit = { code, signal };
        socket.destroy();
        if (!this.closing) {
          const how = signal ? `signal ${signal}` : `status ${code}`;
          this.logger?.error(`${label}: passt (pid ${child.pid}) exited with ${how}${this.lastMessage ? `: ${this.lastMessage}` : ""}; the network is down`);
        }
        resolve();
      }),
    );
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (text: string) => {
      for (const line of text.split("\n").map((l) => l.trim())) {
        if (!line || /^Failed to send \d+ bytes to syslog$/.test(line) || /^Don't run as root/.test(line)) continue;
        this.lastMessage = line;
        this.logger?.debug(`${label}: passt: ${line}`);
      }
    });
    const decoder = new FrameDecoder(
      (frame) => this.receive?.(frame),
      (length) => {
        this.logger?.warn(`${label}: passt sent a frame length of ${length}; disconnecting`);
        socket.destroy();
      },
    );
    this.decoder = decoder;
    socket.on("data", (chunk: Buffer) => decoder.push(chunk));
    socket.on("error", () => socket.destroy());
  }

  /** Starts passt; a missing binary or options passt refuses are a ConfigurationError. */
  static async open(options: PasstOptions = {}): Promise<PasstNetBackend> {
    const binary = options.binary ?? "passt";
    const label = options.label ?? "virtio-net";
    const child = spawn(binary, passtArguments(options), { stdio: ["ignore", "ignore", "pipe", "pipe"] });
    const socket = child.stdio[3] as Socket;
    const backend = new PasstNetBackend(child, socket, options.logger, label);
    backend.closing = true; // startup failures are thrown, not logged
    await new Promise<void>((resolve, reject) => {
      child.once("error", (e: NodeJS.ErrnoException) => {
        socket.destroy();
        reject(
          new ConfigurationError(
            e.code === "ENOENT"
              ? `${label}: backend=passt: '${binary}' not found; ${PASST_PACKAGE_HINT}`
              : `${label}: backend=passt: cannot start '${binary}' (${e.code ?? e.message})`,
            { cause: e },
          ),
        );
      });
      child.once("spawn", () => {
        const timer = setTimeout(resolve, STARTUP_MS);
        void backend.exited.then(() => {
          clearTimeout(timer);
          reject(new ConfigurationError(`${label}: backend=passt: passt exited at startup${backend.lastMessage ? `: ${backend.lastMessage}` : ""}`));
        });
      });
    });
    backend.closing = false;
    return backend;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  open(receive: (frame: Uint8Array) => void, writable?: () => void): void {
    this.receive = receive;
    this.socket.on("drain", () => writable?.());
    this.socket.on("close", () => writable?.());
  }

  counters(): Readonly<Record<string, number>> {
    return { backendTxDropped: this.dropped };
  }

  /** Frames wait in this process: passt reads slower than the guest sends. */
  congested(): boolean {
    return !this.socket.destroyed && this.socket.writableNeedDrain;
  }

  send(frame: Uint8Array): void {
    if (this.exit || this.socket.destroyed || frame.length === 0 || frame.length > MAX_FRAME) {
      this.dropped++;
      return;
    }
    this.socket.write(encodeFrame(frame));
  }

  pause(): void {
    this.socket.pause();
    this.decoder.pause();
  }

  resume(): void {
    this.socket.resume();
    this.decoder.resume();
  }

  /** Closes the socket (passt quits on it) and waits for passt to exit, killing it if it lingers. */
  async close(): Promise<void> {
    this.closing = true;
    this.socket.destroy();
    if (this.exit) return;
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 2000);
    this.child.kill("SIGTERM");
    await this.exited;
    clearTimeout(timer);
  }
}
