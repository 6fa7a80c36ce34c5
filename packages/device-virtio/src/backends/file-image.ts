import { type FileHandle, open } from "node:fs/promises";
import { ConfigurationError } from "@vmm/core";
import type { BlockBackend } from "./block.js";

/**
 * A raw disk image file through node's asynchronous FileHandle: reads and writes run on libuv's thread pool,
 * so disk I/O never stalls the vCPU loop. Flush is fdatasync.
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
    const stat = await handle.stat();
    if (!stat.isFile() && !stat.isBlockDevice()) {
      await handle.close();
      throw new ConfigurationError(`disk image ${path}: not a regular file or block device`);
    }
    return new FileImage(handle, stat.size, readonly, path);
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

  async close(): Promise<void> {
    await this.handle.close();
  }
}
