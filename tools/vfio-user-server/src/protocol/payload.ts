import { invalid } from "./errors.js";

/** Reads the fixed fields of a request payload; a payload too short for a field is the client's error (EINVAL). */
export class PayloadReader {
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.bytes.length;
  }

  /** Requires at least `size` bytes: the fixed part of the request. */
  requireAtLeast(size: number): this {
    if (this.bytes.length < size) throw invalid(`${this.what}: payload of ${this.bytes.length} bytes, expected at least ${size}`);
    return this;
  }

  u8(offset: number): number {
    this.check(offset, 1);
    return this.view.getUint8(offset);
  }

  u16(offset: number): number {
    this.check(offset, 2);
    return this.view.getUint16(offset, true);
  }

  u32(offset: number): number {
    this.check(offset, 4);
    return this.view.getUint32(offset, true);
  }

  u64(offset: number): bigint {
    this.check(offset, 8);
    return this.view.getBigUint64(offset, true);
  }

  private check(offset: number, size: number): void {
    if (offset + size > this.bytes.length) throw invalid(`${this.what}: payload of ${this.bytes.length} bytes has no field at ${offset}`);
  }
}

/** Builds a reply payload field by field (little-endian). */
export class PayloadWriter {
  readonly bytes: Uint8Array;
  private readonly view: DataView;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }

  u16(offset: number, value: number): this {
    this.view.setUint16(offset, value, true);
    return this;
  }

  u32(offset: number, value: number): this {
    this.view.setUint32(offset, value >>> 0, true);
    return this;
  }

  u64(offset: number, value: bigint | number): this {
    this.view.setBigUint64(offset, BigInt(value), true);
    return this;
  }

  set(offset: number, data: Uint8Array): this {
    this.bytes.set(data, offset);
    return this;
  }
}
