import { closeSync, fstatSync } from "node:fs";
import { mapFd } from "@vmm/host-io";
import { Errno, PAGE_SIZE } from "../protocol/constants.js";
import { invalid, ProtocolError } from "../protocol/errors.js";
import type { DmaFile } from "./dma-map.js";

/** Mappings are made per 64 MiB piece, on first use, so a large guest RAM costs no address space until touched. */
const CHUNK = 64 << 20;

/**
 * A DMA window backed by an fd the client sent (its guest RAM memfd): mapped MAP_SHARED in pieces. Before each
 * access the file's size is checked again, since touching a mapping past the end of a file the client shrank would
 * kill the process with SIGBUS.
 */
export class MappedDmaFile implements DmaFile {
  private readonly chunks = new Map<number, Uint8Array>();
  private closed = false;

  private constructor(
    private readonly fd: number,
    private readonly fileOffset: number,
    private readonly size: number,
    private readonly writable: boolean,
  ) {}

  /**
   * Takes ownership of `fd` (closed on failure too): checks it is a regular file holding [offset, offset + size) and
   * maps the first piece, so an fd that cannot be mapped fails the DMA_MAP with its errno.
   */
  static open(fd: number, offset: bigint, size: bigint, writable: boolean): MappedDmaFile {
    try {
      if (offset % BigInt(PAGE_SIZE) !== 0n) throw invalid(`DMA_MAP: file offset 0x${offset.toString(16)} is not page aligned`);
      const stat = fstatSync(fd, { bigint: true });
      if (!stat.isFile()) throw invalid("DMA_MAP: the fd is not a regular file (a memfd or a file on tmpfs/hugetlbfs)");
      if (offset + size > stat.size) throw invalid(`DMA_MAP: the file has ${stat.size} bytes, the window needs ${offset + size}`);
      if (offset + size > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid("DMA_MAP: the window lies beyond 2^53 bytes of its file");
      const file = new MappedDmaFile(fd, Number(offset), Number(size), writable);
      file.chunk(0);
      return file;
    } catch (e) {
      closeSync(fd);
      throw asProtocolError(e);
    }
  }

  read(offset: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    this.each(offset, length, (bytes, at) => out.set(bytes, at));
    return out;
  }

  write(offset: number, data: Uint8Array): void {
    if (!this.writable) throw new ProtocolError(Errno.EACCES, "the DMA window is read-only");
    this.each(offset, data.length, (bytes, at) => bytes.set(data.subarray(at, at + bytes.length)));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // The pages go when the views are collected; the fd goes now.
    this.chunks.clear();
    closeSync(this.fd);
  }

  /** Calls `fn` with each mapped piece of [offset, offset + length) and its offset inside the transfer. */
  private each(offset: number, length: number, fn: (bytes: Uint8Array, at: number) => void): void {
    if (this.closed) throw new ProtocolError(Errno.EFAULT, "the DMA window was unmapped");
    if (offset < 0 || offset + length > this.size) throw new ProtocolError(Errno.EFAULT, `[${offset}, +${length}) outside the ${this.size}-byte window`);
    const fileSize = fstatSync(this.fd).size;
    if (this.fileOffset + offset + length > fileSize) throw new ProtocolError(Errno.EFAULT, "the client shrank the file behind the DMA window");
    let at = 0;
    while (at < length) {
      const position = offset + at;
      const index = Math.floor(position / CHUNK);
      const within = position - index * CHUNK;
      const take = Math.min(length - at, CHUNK - within);
      fn(this.chunk(index).subarray(within, within + take), at);
      at += take;
    }
  }

  private chunk(index: number): Uint8Array {
    let bytes = this.chunks.get(index);
    if (!bytes) {
      const start = index * CHUNK;
      bytes = mapFd(this.fd, this.fileOffset + start, Math.min(CHUNK, this.size - start), { writable: this.writable });
      this.chunks.set(index, bytes);
    }
    return bytes;
  }
}

function asProtocolError(e: unknown): ProtocolError {
  if (e instanceof ProtocolError) return e;
  const errno = (e as { errnoNumber?: number }).errnoNumber;
  return new ProtocolError(typeof errno === "number" && errno > 0 ? errno : Errno.EINVAL, `DMA_MAP: cannot map the fd (${(e as Error).message})`);
}
