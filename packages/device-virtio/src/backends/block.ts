/** Storage behind a virtio-blk device. Offsets and lengths are bytes; I/O is asynchronous. */
export interface BlockBackend {
  /** Size in bytes (the device exposes whole 512-byte sectors). */
  readonly size: number;
  readonly readonly: boolean;
  /**
   * The open file behind the backend, when it is one: a data-plane worker reads and writes it synchronously at
   * byte offsets (pread/pwrite) and fdatasyncs it. Must stay open until `close`.
   */
  readonly fd?: number;
  /** Fills `buffer` from `position`; bytes past the end of the backing store read as 0. */
  read(buffer: Uint8Array, position: number): Promise<void>;
  write(buffer: Uint8Array, position: number): Promise<void>;
  /** Makes every completed write durable. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** A backend in memory, for tests and scratch disks. */
export class MemoryBlockBackend implements BlockBackend {
  flushes = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly readonly = false,
  ) {}
  get size(): number {
    return this.bytes.length;
  }
  async read(buffer: Uint8Array, position: number): Promise<void> {
    buffer.fill(0);
    buffer.set(this.bytes.subarray(position, position + buffer.length));
  }
  async write(buffer: Uint8Array, position: number): Promise<void> {
    if (this.readonly) throw new Error("read-only backend");
    this.bytes.set(buffer.subarray(0, Math.max(0, this.bytes.length - position)), position);
  }
  async flush(): Promise<void> {
    this.flushes++;
  }
  async close(): Promise<void> {}
}
