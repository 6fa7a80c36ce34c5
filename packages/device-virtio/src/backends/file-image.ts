import { readdirSync, readFileSync, readlinkSync, realpathSync, type Stats } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { ConfigurationError } from "@vmm/core";
import { blockDeviceSize, lockFile } from "@vmm/host-io";
import type { BlockBackend } from "./block.js";

/**
 * A raw disk image file or block device through node's asynchronous FileHandle: reads and writes run on
 * libuv's thread pool, so disk I/O never stalls the vCPU loop. Flush is fdatasync.
 *
 * Like QEMU, an open image holds an advisory open-file-description lock (fcntl F_OFD_SETLK): exclusive when
 * writable, shared when read-only. So two VMs (or one VM given the same image twice) cannot write one image,
 * and no reader opens it while a writer has it. The lock goes with the file's last fd.
 */
export class FileImage implements BlockBackend {
  private constructor(
    private readonly handle: FileHandle,
    readonly size: number,
    readonly readonly: boolean,
    readonly path: string,
  ) {}

  static async open(path: string, options: { readonly?: boolean } = {}): Promise<FileImage> {
    const readonly = options.readonly ?? false;
    let handle: FileHandle;
    try {
      handle = await open(path, readonly ? "r" : "r+");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "";
      throw new ConfigurationError(`disk image ${path}: cannot open${readonly ? "" : " for writing"} (${code || String(e)})`, { cause: e });
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile() && !stat.isBlockDevice()) throw new ConfigurationError(`disk image ${path}: not a regular file or block device`);
      if (!lockFile(handle.fd, readonly ? "shared" : "exclusive")) {
        throw new ConfigurationError(
          `disk image ${path} is in use: ${lockHolder(path, stat)} holds a lock on it, so it cannot be opened ${readonly ? "read-only while it is open for writing" : "for writing"}`,
        );
      }
      // stat() says 0 for a block device; its size comes from the device.
      const size = stat.isBlockDevice() ? blockDeviceSize(handle.fd) : stat.size;
      if (size === 0) throw new ConfigurationError(`disk image ${path} is empty (0 bytes)`);
      return new FileImage(handle, size, readonly, path);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /** The image's file descriptor (for a data-plane worker's synchronous I/O); valid until `close`. */
  get fd(): number {
    return this.handle.fd;
  }

  async read(buffer: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < buffer.length) {
      const { bytesRead } = await this.handle.read(buffer, done, buffer.length - done, position + done);
      if (bytesRead === 0) {
        buffer.fill(0, done);
        return;
      }
      done += bytesRead;
    }
  }

  async write(buffer: Uint8Array, position: number): Promise<void> {
    if (this.readonly) throw new Error(`${this.path} is read-only`);
    let done = 0;
    while (done < buffer.length) {
      const { bytesWritten } = await this.handle.write(buffer, done, buffer.length - done, position + done);
      done += bytesWritten;
    }
  }

  async flush(): Promise<void> {
    await this.handle.datasync();
  }

  /** Writes back what the guest wrote (fdatasync) before closing, so a stopped VM leaves a durable image. */
  async close(): Promise<void> {
    try {
      if (!this.readonly) await this.handle.datasync();
    } finally {
      await this.handle.close();
    }
  }
}

/**
 * Who holds a lock on the file: OFD locks show pid -1 in /proc/locks, but /proc/PID/fdinfo/FD lists the
 * locks held through that open file ("lock: ... maj:min:inode"). Only fds that point at the image are read.
 */
function lockHolder(path: string, stat: Stats): string {
  const dev = stat.dev;
  const major = ((dev >> 8) & 0xfff).toString(16).padStart(2, "0");
  const minor = ((dev & 0xff) | ((dev >> 12) & 0xfff00)).toString(16).padStart(2, "0");
  const key = `${major}:${minor}:${stat.ino} `;
  let target: string;
  try {
    target = realpathSync(path);
  } catch {
    return "another process";
  }
  for (const pid of readdirSafe("/proc").filter((p) => /^\d+$/.test(p))) {
    for (const fd of readdirSafe(`/proc/${pid}/fd`)) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== target) continue;
        const info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8");
        if (info.split("\n").some((l) => l.startsWith("lock:") && l.includes(key))) return describeProcess(Number(pid));
      } catch {
        // the fd or the process went away meanwhile
      }
    }
  }
  return "another process";
}

function describeProcess(pid: number): string {
  if (pid === process.pid) return "this process (is the same image given twice?)";
  const read = (f: string) => {
    try {
      return readFileSync(`/proc/${pid}/${f}`, "utf8");
    } catch {
      return ""; // gone meanwhile, or not ours to read
    }
  };
  const name = read("comm").trim();
  let command = read("cmdline").split("\0").filter(Boolean).join(" ").replace(/\s+/g, " ").trim();
  if (command.length > 100) command = `${command.slice(0, 97)}...`;
  return `process ${pid}${name ? ` (${name}${command ? `: ${command}` : ""})` : ""}`;
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
